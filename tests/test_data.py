"""Datasets, the paper's pipeline and the loader, against scikit-learn, torchvision and numpy."""

import os
import re
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib import cbook
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import Dataset, TensorDataset
from torchvision import datasets
from torchvision.models import AlexNet_Weights
from torchvision.transforms import v2

from alexnet_book.data import (
    DATASET_NAMES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataBundle,
    PCALighting,
    fit_pca_lighting,
    load_data,
    make_loader,
    paper_eval_transform,
    paper_train_transform,
    ten_crop_predict,
    ten_crop_val_set,
)

NO_NORM = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # see the [0, 1] values themselves


@pytest.fixture(scope="module")
def digits():
    return load_digits()  # scikit-learn's own copy: the oracle for counts, labels and pixels


@pytest.fixture(scope="module")
def photo():
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:  # ships with matplotlib
        return image.convert("RGB")  # 512 wide, 600 high


def _stack(dataset):
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.tensor(labels)


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def test_digits_split_is_complete_disjoint_and_stratified(digits):
    bundle = load_data("digits", augment=False)
    assert isinstance(bundle, DataBundle) and bundle.name == "digits"
    train, val = set(bundle.train.indices), set(bundle.val.indices)
    assert len(digits.target) == 1797
    assert len(train) + len(val) == len(bundle.train) + len(bundle.val) == 1797
    assert not train & val and train | val == set(range(1797))
    assert len(val) == 360  # a fifth, rounded up as scikit-learn does: ceil(359.4)
    counts = np.bincount(digits.target)
    val_counts = np.bincount(digits.target[sorted(val)], minlength=10)
    assert (val_counts > 0).all() and (counts - val_counts > 0).all()  # every class in both
    assert np.abs(val_counts - 0.2 * counts).max() <= 1  # each class split 80/20
    for i in (0, 500, 1436):  # the labels are scikit-learn's
        assert bundle.train[i][1] == digits.target[bundle.train.indices[i]]
    assert bundle.num_classes == 10 and bundle.classes == tuple("0123456789")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [67, 99])
def test_digits_shapes(channels, size):
    bundle = load_data("digits", image_size=size, channels=channels)
    assert (bundle.in_channels, bundle.image_size) == (channels, size)
    for dataset in (bundle.train, bundle.val):
        image, label = dataset[3]
        assert image.shape == (channels, size, size) and image.dtype == torch.float32
        assert isinstance(label, int)
    if channels == 3:  # the grey values, repeated
        image, _ = bundle.val[3]
        assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])


def test_digits_values_are_resized_and_normalised_with_the_training_split(digits):
    bundle = load_data("digits", channels=3, augment=False)
    images, _ = _stack(bundle.train)
    for channel in range(3):
        assert abs(images[:, channel].double().mean().item()) < 1e-4
        assert abs(images[:, channel].double().std().item() - 1) < 1e-3
    # By hand: 0..16 scaled to [0, 1], bilinear with antialias to 67×67, then the training
    # split's mean and standard deviation (not the whole set's).
    raw = torch.from_numpy(digits.images).float().unsqueeze(1) / 16
    resized = F.interpolate(raw, size=(67, 67), mode="bilinear", align_corners=False,
                            antialias=True).numpy()
    kept = resized[bundle.train.indices]
    mean, std = kept.astype(np.float64).mean(), kept.astype(np.float64).std(ddof=1)
    for i in (0, 7):
        expected = (resized[bundle.val.indices[i], 0] - mean) / std
        np.testing.assert_allclose(bundle.val[i][0][1].numpy(), expected, atol=1e-5)
    whole = resized.astype(np.float64)
    assert abs(whole.mean() - mean) > 1e-4  # the whole set's mean would be a different number


def test_digits_are_deterministic_and_augmentation_is_optional():
    first, second = load_data("digits", augment=False), load_data("digits", augment=False)
    assert first.train.indices == second.train.indices and first.val.indices == second.val.indices
    for i in (0, 100):
        assert torch.equal(first.train[i][0], second.train[i][0])
        assert torch.equal(first.train[i][0], first.train[i][0])  # the same on every access
    augmented = load_data("digits", augment=True)
    changed = [not torch.equal(augmented.train[i][0], augmented.train[i][0]) for i in range(20)]
    assert any(changed)  # random shifts on the training set
    assert torch.equal(augmented.val[5][0], augmented.val[5][0])  # never on the validation set
    assert torch.equal(augmented.val[5][0], first.val[5][0])


def test_digits_augmentation_shifts_without_flipping():
    plain, augmented = load_data("digits", augment=False), load_data("digits")
    background = plain.train[0][0].min()  # no ink, normalised
    torch.manual_seed(0)
    for i in range(0, 1437, 97):
        image, shifted = plain.train[i][0], augmented.train[i][0]
        padded = F.pad(image, (4, 4, 4, 4), value=background.item())  # 67 / 16 ≈ 4 pixels
        windows = [padded[:, top:top + 67, left:left + 67]
                   for top in range(9) for left in range(9)]
        assert any(torch.allclose(shifted, window) for window in windows), i


def test_digits_are_fast():
    load_data("digits")  # imports done
    start = time.perf_counter()
    bundle = load_data("digits")
    built = time.perf_counter() - start
    start = time.perf_counter()
    seen = sum(len(labels) for _, labels in make_loader(bundle.train, 64, train=True))
    epoch = time.perf_counter() - start
    assert seen == 1437 // 64 * 64
    assert built < 1.0 and epoch < 1.0, f"building took {built:.2f} s, an epoch {epoch:.2f} s"


def test_digits_options_are_checked():
    with pytest.raises(ValueError, match="channels must be 1, or 3"):
        load_data("digits", channels=2)
    with pytest.raises(ValueError, match="channels=3"):
        load_data("digits", pca_lighting=True)
    bundle = load_data("digits", channels=3, pca_lighting=True)
    assert bundle.train[0][0].shape == (3, 67, 67)
    with pytest.raises(ValueError, match="image_size must be at least 1"):
        load_data("digits", image_size=0)


# --------------------------------------------------------------------------------------------
# The paper's transforms on a photograph
# --------------------------------------------------------------------------------------------


def _resized(photo, side=256):
    """torchvision's own shorter-side resize: 512×600 → 256×300 (600·256/512 = 300)."""
    image = v2.functional.resize(v2.functional.to_image(photo), side, antialias=True)
    return v2.functional.to_dtype(image, torch.float32, scale=True)


def test_imagenet_statistics_are_torchvisions():
    preset = AlexNet_Weights.IMAGENET1K_V1.transforms()  # no download: only the preset
    assert list(IMAGENET_MEAN) == preset.mean and list(IMAGENET_STD) == preset.std


def test_train_crops_are_windows_of_the_central_256_square_or_their_mirrors(photo):
    resized = _resized(photo)
    assert resized.shape == (3, 300, 256)
    square_top = (300 - 256) // 2  # Section 2: "cropped out the central 256×256 patch"
    transform = paper_train_transform(**NO_NORM)
    torch.manual_seed(0)
    flips = set()
    for _ in range(12):
        crop = transform(photo)
        assert crop.shape == (3, 227, 227) and crop.dtype == torch.float32
        matches = []
        for flipped in (False, True):
            candidate = v2.functional.horizontal_flip(crop) if flipped else crop
            for top in range(square_top, square_top + 256 - 227 + 1):
                for left in range(256 - 227 + 1):
                    if torch.equal(resized[:, top, left], candidate[:, 0, 0]) and torch.equal(
                            resized[:, top:top + 227, left:left + 227], candidate):
                        matches.append(flipped)
        assert matches, "a training crop is not a 227 window of the central 256×256 square"
        flips.update(matches)
    assert flips == {False, True}  # both mirrored and plain crops occur


def test_eval_transform_at_224_is_torchvisions_alexnet_preset(photo):
    # torchvision's AlexNet preset: shorter side 256, centre crop 224, ImageNet normalisation.
    preset = AlexNet_Weights.IMAGENET1K_V1.transforms()
    ours = paper_eval_transform(224, resize=256)(photo)
    torch.testing.assert_close(ours.as_subclass(torch.Tensor), preset(photo), atol=1e-5, rtol=0)


def test_eval_transform_default_is_the_centre_227_of_the_256_image(photo):
    ours = paper_eval_transform(**NO_NORM)(photo)
    expected = v2.functional.center_crop(_resized(photo), [227, 227])
    assert ours.shape == (3, 227, 227)
    torch.testing.assert_close(ours.as_subclass(torch.Tensor), expected.as_subclass(torch.Tensor))


def test_ten_crops_are_torchvisions_and_the_last_five_are_mirrors(photo):
    crops = paper_eval_transform(ten_crop=True, **NO_NORM)(photo)
    assert crops.shape == (10, 3, 227, 227)
    square = v2.functional.center_crop(_resized(photo), [256, 256])  # the paper's 256×256 image
    expected = torch.stack(v2.functional.ten_crop(square, [227, 227]))
    torch.testing.assert_close(crops.as_subclass(torch.Tensor), expected.as_subclass(torch.Tensor))
    # Crops 6..10 come from the flipped image, so its top-left corner is the mirror of the
    # original's top-right, and so on.
    flip = v2.functional.horizontal_flip
    for mirrored, original in [(5, 1), (6, 0), (7, 3), (8, 2)]:
        assert torch.equal(crops[mirrored], flip(crops[original]))
    # The centre crop is mirrored exactly when the leftover width is even: 256 − 227 = 29 is
    # odd (torchvision's crop then sits one pixel off), 257 − 227 = 30 is not.
    crops = paper_eval_transform(ten_crop=True, resize=257, **NO_NORM)(photo)
    assert torch.equal(crops[9], flip(crops[4]))


def test_crops_never_leave_the_central_square_of_a_wide_image():
    # 256×512: the central 256×256 square is columns 128–383; outside it every pixel is black.
    wide = torch.zeros(3, 256, 512, dtype=torch.uint8)
    wide[:, :, 128:384] = 255
    corners_and_centre = paper_eval_transform(ten_crop=True, **NO_NORM)(wide)
    assert corners_and_centre.min() == 1.0  # all ten crops lie inside the white square
    torch.manual_seed(0)
    for _ in range(20):
        assert paper_train_transform(**NO_NORM)(wide).min() == 1.0


def test_transform_sizes_follow_the_paper_ratio(photo):
    assert paper_eval_transform(67, **NO_NORM)(photo).shape == (3, 67, 67)
    small = paper_eval_transform(67, **NO_NORM)(photo)  # 67·256/227 = 75.6 → shorter side 76
    square = v2.functional.center_crop(_resized(photo, 76), [76, 76])  # the paper's square
    expected = v2.functional.center_crop(square, [67, 67])
    torch.testing.assert_close(small.as_subclass(torch.Tensor), expected.as_subclass(torch.Tensor))
    with pytest.raises(ValueError, match="must be at least image_size"):
        paper_train_transform(227, resize=200)


# --------------------------------------------------------------------------------------------
# PCA colour augmentation
# --------------------------------------------------------------------------------------------


def test_pca_fit_matches_numpy(photo):
    small = v2.functional.resize(v2.functional.to_image(photo), 40, antialias=True)
    images = v2.functional.to_dtype(torch.stack(v2.functional.ten_crop(small, [16, 16])),
                                    torch.float32, scale=True)  # (10, 3, 16, 16), real colours
    lighting = fit_pca_lighting(images)
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    values, vectors = np.linalg.eigh(np.cov(pixels))
    values, vectors = values[::-1], vectors[:, ::-1]  # largest first
    assert (lighting.eigenvalues >= 0).all()
    np.testing.assert_allclose(lighting.eigenvalues.numpy(), values, rtol=1e-4, atol=1e-8)
    ours = lighting.eigenvectors.double().numpy()
    np.testing.assert_allclose(ours.T @ ours, np.eye(3), atol=1e-5)  # orthonormal
    np.testing.assert_allclose(np.abs(ours.T @ vectors), np.eye(3), atol=1e-4)  # same, up to sign
    # A dataset of (image, label) items gives the same fit.
    from_dataset = fit_pca_lighting(TensorDataset(images, torch.zeros(10)))
    torch.testing.assert_close(from_dataset.eigenvalues, lighting.eigenvalues)


def _random_basis():
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    return q


def test_pca_shift_is_one_colour_per_image_along_the_eigenvectors():
    basis, values = _random_basis(), torch.tensor([0.2, 0.02, 0.0])
    lighting = PCALighting(values, basis, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4000, 3, 2, 3)
    shift = lighting(x) - x
    torch.testing.assert_close(shift, shift[..., :1, :1].expand_as(shift))  # same for all pixels
    coordinates = shift[:, :, 0, 0] @ basis  # in the eigenvector basis: α_i λ_i
    assert coordinates[:, 2].abs().max() < 1e-6  # nothing along the direction with λ = 0
    alpha = coordinates[:, :2] / values[:2]
    assert torch.allclose(alpha.std(dim=0), torch.tensor([0.1, 0.1]), atol=0.006)
    assert alpha.mean(dim=0).abs().max() < 0.01
    assert not torch.allclose(shift[0], shift[1])  # one draw per image
    one = torch.rand(3, 5, 5)
    single = lighting(one) - one
    torch.testing.assert_close(single, single[:, :1, :1].expand_as(single))


def test_pca_lighting_is_reproducible_and_checks_its_input():
    basis, values = _random_basis(), torch.tensor([0.2, 0.02, 0.01])
    x = torch.rand(2, 3, 4, 4)
    a = PCALighting(values, basis, generator=torch.Generator().manual_seed(5))(x)
    b = PCALighting(values, basis, generator=torch.Generator().manual_seed(5))(x)
    assert torch.equal(a, b)
    torch.testing.assert_close(PCALighting(values, basis, std=0)(x), x)
    with pytest.raises(ValueError, match=r"RGB images of shape \(3, H, W\)"):
        PCALighting(values, basis)(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        fit_pca_lighting(torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fit_pca_lighting(torch.rand(4, 3, 8, 8) * 255)
    with pytest.raises(ValueError, match="3 eigenvalues"):
        PCALighting(values[:2], basis)


# --------------------------------------------------------------------------------------------
# ten-crop prediction
# --------------------------------------------------------------------------------------------


def test_ten_crop_predict_averages_the_softmax():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    crops = torch.randn(2, 10, 3, 4, 4)
    expected = torch.zeros(2, 5)
    for n in range(2):
        for k in range(10):
            logits = model(crops[n, k].unsqueeze(0))[0]
            expected[n] += torch.exp(logits) / torch.exp(logits).sum() / 10
    got = ten_crop_predict(model, crops)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match=r"\(N, 10, C, H, W\)"):
        ten_crop_predict(model, crops[0])


# --------------------------------------------------------------------------------------------
# make_loader
# --------------------------------------------------------------------------------------------

NUMBERS = TensorDataset(torch.arange(41))  # 41: not a multiple of the two processes


def _order(loader):
    return [batch[0].tolist() for batch in loader]


def _as_rank(monkeypatch, rank, world=2):
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: world)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: rank)


def test_two_processes_see_the_images_of_one(monkeypatch):
    single = _order(make_loader(NUMBERS, 8, train=True, seed=3, epoch=2))
    ranks = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank)
        ranks.append(_order(make_loader(NUMBERS, 4, train=True, seed=3, epoch=2,
                                        distributed=True)))
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 5  # 40 of 41, whole batches
    for step, batch in enumerate(single):
        assert set(ranks[0][step]) | set(ranks[1][step]) == set(batch)
        assert not set(ranks[0][step]) & set(ranks[1][step])


def test_order_depends_on_seed_and_epoch_only():
    def order(**kwargs):
        return sum(_order(make_loader(NUMBERS, 4, train=True, drop_last=False, **kwargs)), [])

    first = order(seed=1, epoch=4)
    assert sorted(first) == list(range(41))  # every item once
    assert order(seed=1, epoch=4) == first
    assert order(seed=1, epoch=5) != first
    assert order(seed=7, epoch=4) != first
    assert order(seed=1, epoch=4) != list(range(41))
    assert sum(_order(make_loader(NUMBERS, 4, train=False)), []) == list(range(41))


def test_seeds_do_not_share_epoch_orders():
    # DistributedSampler shuffles with seed + epoch; seeds 0-2 over 8 epochs must not repeat
    # each other's orders shifted by an epoch (seed 0, epoch 1 against seed 1, epoch 0).
    def order(seed, epoch):
        return tuple(sum(_order(make_loader(NUMBERS, 4, train=True, drop_last=False, seed=seed,
                                            epoch=epoch)), []))

    orders = [order(seed, epoch) for seed in range(3) for epoch in range(8)]
    assert len(set(orders)) == len(orders)


class _Noise(Dataset):
    """Each item is a random number, like an augmentation drawn in a worker."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.rand(())


def test_worker_augmentations_are_reproducible():
    def draws(epoch):
        loader = make_loader(_Noise(), 2, train=True, num_workers=2, seed=0, epoch=epoch)
        return torch.cat(list(loader))

    first = draws(0)
    assert torch.equal(draws(0), first)
    assert not torch.equal(draws(1), first)


def test_batch_size_is_checked(monkeypatch):
    with pytest.raises(ValueError, match="at least 1"):
        make_loader(NUMBERS, 0, train=True)
    small = TensorDataset(torch.arange(10))
    with pytest.raises(ValueError, match=r"batch_size 16 .* 10 .*e\.g\. 8"):
        make_loader(small, 16, train=True)
    _as_rank(monkeypatch, 1)
    with pytest.raises(ValueError, match=r"batch_size 6 .* 5 \(10 items over 2 processes\)"):
        make_loader(small, 6, train=True, distributed=True)


def test_evaluation_batch_shrinks_to_a_small_dataset():
    small = TensorDataset(torch.arange(10))
    batches = [batch for (batch,) in make_loader(small, 64, train=False)]
    assert len(batches) == 1 and sorted(batches[0].tolist()) == list(range(10))


def test_distributed_needs_an_initialised_process_group(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="torchrun"):
        make_loader(NUMBERS, 4, train=True, distributed=True)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "mps"])
def test_no_workers_off_cuda(device):
    loader = make_loader(NUMBERS, 4, train=True, device=device)
    assert loader.num_workers == 0 and not loader.pin_memory and not loader.persistent_workers
    assert loader.drop_last and not make_loader(NUMBERS, 4, train=False).drop_last


@pytest.mark.parametrize("cores,local,expected", [(32, None, 8), (3, None, 3), (32, "8", 4)])
def test_workers_and_pinned_memory_on_cuda(monkeypatch, cores, local, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    distributed = local is not None
    if distributed:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
        _as_rank(monkeypatch, 0)
    loader = make_loader(NUMBERS, 4, train=True, device="cuda", distributed=distributed)
    assert loader.num_workers == expected
    assert loader.pin_memory and loader.persistent_workers and loader.prefetch_factor == 4
    assert make_loader(NUMBERS, 4, train=True, device="cuda", num_workers=0).num_workers == 0


# --------------------------------------------------------------------------------------------
# Datasets that are not here, and bad folders
# --------------------------------------------------------------------------------------------


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as error:
        load_data("mnist")
    assert all(name in str(error.value) for name in DATASET_NAMES)


@pytest.mark.parametrize("name", ["cifar10", "imagenette"])
def test_missing_downloads_say_how_to_get_them(tmp_path, name):
    with pytest.raises((FileNotFoundError, RuntimeError)) as error:
        load_data(name, root=tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "download=True" in message and "'digits'" in message
    assert not any(tmp_path.iterdir())  # nothing was downloaded or created


def _png(path, colour, size=(40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _folder(root, counts):
    for name, count in counts.items():
        for i in range(count):
            _png(root / name / f"{i}.png", (40 * i, 200 if name == "cat" else 20, 90))


def test_image_folder_with_train_and_val(tmp_path):
    _folder(tmp_path / "train", {"cat": 3, "dog": 4})
    _folder(tmp_path / "val", {"cat": 2, "dog": 1})
    bundle = load_data(f"imagefolder:{tmp_path}", image_size=32)
    assert (len(bundle.train), len(bundle.val)) == (7, 3)
    assert bundle.classes == ("cat", "dog") and bundle.num_classes == 2
    assert (bundle.in_channels, bundle.image_size) == (3, 32)
    images, labels = _stack(bundle.val)
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [0, 0, 1]
    assert bundle.train[6][0].shape == (3, 32, 32) and bundle.train[6][1] == 1


def test_image_folder_without_train_and_val_is_split(tmp_path):
    _folder(tmp_path, {"cat": 5, "dog": 5})
    (tmp_path / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    bundle = load_data(f"imagefolder:{tmp_path}", image_size=32, augment=False)
    assert bundle.classes == ("cat", "dog")
    assert (len(bundle.train), len(bundle.val)) == (8, 2)
    assert sorted(label for _, label in (bundle.val[i] for i in range(2))) == [0, 1]
    assert not set(bundle.train.indices) & set(bundle.val.indices)
    again = load_data(f"imagefolder:{tmp_path}", image_size=32, augment=False)
    assert again.val.indices == bundle.val.indices
    # ImageFolder read the files: the items are the PNGs' colours, normalised.
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    expected = (torch.tensor([0, 200, 90]) / 255 - mean) / std
    cat_zero = bundle.train.dataset.samples.index((str(tmp_path / "cat" / "0.png"), 0))
    if cat_zero in bundle.train.indices:
        image = bundle.train[bundle.train.indices.index(cat_zero)][0]
    else:
        image = bundle.val[bundle.val.indices.index(cat_zero)][0]
    torch.testing.assert_close(image[:, 10, 10], expected, atol=1e-5, rtol=0)


def test_too_small_a_folder_cannot_be_split(tmp_path):
    _folder(tmp_path, {"cat": 1, "dog": 1})
    with pytest.raises(ValueError, match="cannot split"):
        load_data(f"imagefolder:{tmp_path}")


def test_image_folder_errors_name_what_is_wrong(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_data(f"imagefolder:{missing}")

    loose = tmp_path / "loose"
    _png(loose / "picture.png", (1, 2, 3))
    with pytest.raises(FileNotFoundError, match="no class folders"):
        load_data(f"imagefolder:{loose}")

    empty = tmp_path / "empty"
    _folder(empty, {"cat": 3})
    (empty / "dog").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{empty / 'dog'} (class 'dog')")):
        load_data(f"imagefolder:{empty}")

    with pytest.raises(ValueError, match="channels must be 3"):
        load_data(f"imagefolder:{empty}", channels=1)


def test_a_corrupt_image_is_named_when_it_is_loaded(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    _folder(tmp_path / "val", {"cat": 1, "dog": 1})
    junk = tmp_path / "val" / "dog" / "broken.jpg"
    junk.write_bytes(b"this is not a JPEG" * 10)
    bundle = load_data(f"imagefolder:{tmp_path}", image_size=32)  # found, not yet read
    with pytest.raises(OSError, match=re.escape(str(junk)) + ".*delete it"):
        for i in range(len(bundle.val)):
            bundle.val[i]


# --------------------------------------------------------------------------------------------
# torchvision's datasets, offline: a small Imagenette folder and a stand-in for CIFAR-10
# --------------------------------------------------------------------------------------------


def test_imagenette_through_torchvision(tmp_path):
    for split, count in (("train", 3), ("val", 1)):
        for wnid in ("n01440764", "n03888257"):  # tench, parachute
            for i in range(count):
                path = tmp_path / "imagenette2-320" / split / wnid / f"{wnid}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (48, 40), (i * 60, 100, 30)).save(path)
    bundle = load_data("imagenette", root=tmp_path, image_size=32)
    assert bundle.classes == ("tench", "parachute") and bundle.num_classes == 2
    assert (len(bundle.train), len(bundle.val)) == (6, 2)
    assert bundle.train[0][0].shape == (3, 32, 32) and bundle.val[1][1] == 1


class _FakeCIFAR10(Dataset):
    """The parts of torchvision's CIFAR10 that load_data uses, with random pixels."""

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.data = np.random.default_rng(int(train)).integers(0, 256, (20, 32, 32, 3), np.uint8)
        self.targets = [i % 10 for i in range(20)]
        self.classes = [f"class {i}" for i in range(10)]
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def test_cifar10_upscaled_and_normalised_with_its_own_statistics(monkeypatch):
    monkeypatch.setattr(datasets, "CIFAR10", _FakeCIFAR10)
    bundle = load_data("cifar10", pca_lighting=True)
    assert (bundle.image_size, bundle.in_channels, bundle.num_classes) == (67, 3, 10)
    assert bundle.train[0][0].shape == bundle.val[0][0].shape == (3, 67, 67)
    pixels = _FakeCIFAR10(None).data.reshape(-1, 3) / 255  # the training images' RGB values
    normalize = bundle.val.transform.transforms[-1]
    np.testing.assert_allclose(normalize.mean, pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(normalize.std, pixels.std(axis=0, ddof=1), rtol=1e-6)
    assert any(isinstance(t, PCALighting) for t in bundle.train.transform.transforms)


def test_sample_photos_are_real_offline_photographs():
    from sklearn.datasets import load_sample_image

    from alexnet_book.data import SAMPLE_PHOTOS, sample_photo

    for name in SAMPLE_PHOTOS:
        photo = sample_photo(name)
        assert photo.shape == (3, 227, 227) and photo.dtype == torch.float32
        assert 0 <= photo.min() and photo.max() <= 1 and photo.std() > 0.05  # not blank
    # At the original height (427) the centre crop is the photograph's own centre pixels.
    original = torch.from_numpy(np.array(load_sample_image("china.jpg"))).permute(2, 0, 1)
    left = (640 - 427) // 2
    torch.testing.assert_close(sample_photo("china", size=427),
                               original[:, :, left:left + 427].float() / 255)
    grey = sample_photo("flower", size=64, grey=True)
    assert grey.shape == (1, 64, 64)
    colour = sample_photo("flower", size=64)
    weights = torch.tensor([0.299, 0.587, 0.114])[:, None, None]  # ITU-R 601 luma
    torch.testing.assert_close(grey[0], (colour * weights).sum(0), atol=2e-3, rtol=0)


def test_sample_photo_names_the_offline_photos():
    from alexnet_book.data import sample_photo

    with pytest.raises(ValueError, match="china"):
        sample_photo("lena")
    with pytest.raises(ValueError, match="size must be at least 1"):
        sample_photo(size=0)


def test_bundles_expose_the_normalisation_the_model_expects():
    digits = load_data("digits", augment=False)
    image, _ = digits.val[0]
    raw = digits.val.dataset.images[digits.val.indices[0]]
    torch.testing.assert_close(digits.normalize(raw), image)


def test_ten_crop_val_set_gives_the_papers_ten_views(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        for i in range(5):  # enough for the 80/20 split to keep both classes in each part
            path = tmp_path / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(path)
    bundle = load_data(f"imagefolder:{tmp_path}", image_size=32, augment=False)
    ten = ten_crop_val_set(bundle)
    assert len(ten) == len(bundle.val)
    crops, label = ten[0]
    single, same_label = bundle.val[0]
    assert crops.shape == (10, 3, 32, 32) and label == same_label
    # torchvision's order: four corners and the centre, then the same of the mirror image.
    torch.testing.assert_close(crops[4], single)  # the centre crop is the one-view input
    torch.testing.assert_close(crops[9], single.flip(-1))
    assert not torch.equal(crops[0], crops[4])  # the corners are other views


def test_ten_crops_of_the_digits_are_refused():
    with pytest.raises(ValueError, match="ten crops need photographs"):
        ten_crop_val_set(load_data("digits"))
