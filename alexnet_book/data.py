"""Datasets by name, the paper's input pipeline and its PCA colour augmentation (Section 4.1).

The paper fought overfitting with two kinds of data augmentation, both computed on the fly:

- **crops and flips**: every image is resized so that its shorter side is 256 pixels and cut
  to its central 256×256 square (Section 2); training takes a random 224×224 patch of that
  (we take 227×227, the size conv1 tiles exactly) and its horizontal reflection with
  probability ½; testing averages the softmax over ten patches (the four corners, the centre,
  and their reflections). ``paper_train_transform``,
  ``paper_eval_transform`` and ``ten_crop_predict`` build this from torchvision's transforms.
- **PCA colour augmentation** ("fancy PCA"): add ``Σ α_i λ_i p_i`` to every RGB pixel, with
  ``λ_i``, ``p_i`` the eigenvalues and eigenvectors of the 3×3 covariance of the training set's
  RGB values and ``α_i ~ N(0, 0.1)`` drawn once per image each time it is used. torchvision has
  no such transform, so ``fit_pca_lighting`` and ``PCALighting`` write it here.

``load_data(name)`` returns a ``DataBundle`` with the training and validation sets:

- ``"digits"`` (the offline default): scikit-learn's 1,797 handwritten digits, 8×8 grey images
  that ship inside scikit-learn, held in memory and upscaled to 67×67, the smallest input the
  paper's network accepts. A width-1/8 network trains on them on a CPU in seconds.
- ``"cifar10"``, ``"imagenette"``: torchvision's own dataset classes under ``root``, downloaded
  only with ``download=True``.
- ``"imagefolder:PATH"``: torchvision's ``ImageFolder`` on ``PATH/train`` and ``PATH/val``, or on
  ``PATH`` split 80/20.

``make_loader`` wraps a dataset in a ``DataLoader`` that keeps a GPU fed and visits the images in
the same order whether one process or many (``torchrun``) do the work.
"""

from __future__ import annotations

import copy
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchvision import datasets, tv_tensors
from torchvision.transforms import v2

from ._checks import whole_number as _whole

__all__ = [
    "DataBundle",
    "DATASET_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TensorImageDataset",
    "PCALighting",
    "fit_pca_lighting",
    "paper_train_transform",
    "paper_eval_transform",
    "ten_crop_predict",
    "ten_crop_val_set",
    "SAMPLE_PHOTOS",
    "sample_photo",
    "load_data",
    "make_loader",
]

DATASET_NAMES = ("digits", "cifar10", "imagenette", "imagefolder:PATH")

# Per-channel mean and standard deviation of ImageNet's training images (RGB in [0, 1]), the
# values torchvision's pretrained models expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The paper resized to 256 and cropped 224 (we crop 227); other crop sizes keep that ratio.
PAPER_RESIZE, PAPER_CROP = 256, 227

# The side of the square images each dataset gives the model unless image_size says otherwise.
DEFAULT_IMAGE_SIZES = {
    # 8×8 digits upscaled to the smallest input the paper's network accepts: (67 − 11)/4 + 1 = 15
    # after conv1, and every later layer still fits. Bigger costs time and shows nothing new.
    "digits": 67,
    # CIFAR-10's 32×32 images upscaled the same way (to 76, then a random 67 crop, the paper's
    # 227/256 ratio): the paper's layer shapes at about 1/11 of the arithmetic of 227×227.
    # Upscaling adds no detail, so 227 would cost 11× more for the same information;
    # pass image_size=227 to run the full-size network on it anyway.
    "cifar10": 67,
    # Photographs: the paper's size.
    "imagenette": PAPER_CROP,
    "imagefolder": PAPER_CROP,
}

VAL_FRACTION = 0.2  # of the digits, and of an image folder that has no train/ and val/
SPLIT_SEED = 0  # fixed: the same split on every machine and in every run

# Imagenette comes in three sizes, each in its own folder under root. "320px" (shorter side 320,
# a 341 MB download) is enough for the paper's 256-pixel resize; "full" is 1.5 GB.
_IMAGENETTE_SIZES = {"320px": "imagenette2-320", "full": "imagenette2", "160px": "imagenette2-160"}
_PCA_FIT_IMAGES = 500  # photographs decoded to fit PCA lighting on a folder dataset
_PCA_FIT_SIDE = 64  # their shorter side: pixel colour statistics barely depend on resolution


@dataclass(frozen=True)
class DataBundle:
    """A training set and a validation set, with what a model needs to know about them."""

    train: Dataset  # items: (float tensor C×H×W, int label)
    val: Dataset
    num_classes: int
    in_channels: int
    image_size: int  # side of the square images the model gets
    classes: tuple[str, ...]
    name: str
    # The last step of the validation transform: the mean subtracted and the standard
    # deviation divided, per channel, as the model expects its input. None if there is none.
    normalize: v2.Normalize | None = None


# --------------------------------------------------------------------------------------------
# PCA colour augmentation
# --------------------------------------------------------------------------------------------


def _pixel_moments(batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and unbiased covariance (C, C) of the pixel values of (B, C, H, W) batches.

    Sums are accumulated in float64 one batch at a time, so a whole training set never has to be
    held as one float array.
    """
    count, total, products = 0, None, None
    for batch in batches:
        pixels = batch.to(torch.float64).transpose(0, 1).reshape(batch.shape[1], -1)  # (C, B·H·W)
        if total is None:
            total = torch.zeros(pixels.shape[0], dtype=torch.float64)
            products = torch.zeros(pixels.shape[0], pixels.shape[0], dtype=torch.float64)
        count += pixels.shape[1]
        total += pixels.sum(dim=1)
        products += pixels @ pixels.T
    if count < 2:
        raise ValueError(f"need at least 2 pixels to estimate a covariance, got {count}")
    mean = total / count
    covariance = (products - count * torch.outer(mean, mean)) / (count - 1)
    return mean, covariance


def _check_unit_range(images: torch.Tensor, where: str) -> None:
    if not images.is_floating_point():
        raise TypeError(
            f"{where} must be float RGB values in [0, 1], got dtype {images.dtype}; convert "
            "uint8 images with images.float() / 255 or v2.ToDtype(torch.float32, scale=True)"
        )
    low, high = images.min().item(), images.max().item()
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"{where} must hold RGB values in [0, 1], got values from {low:.3g} to {high:.3g}; "
            "fit PCA lighting on images before normalisation (after "
            "v2.ToDtype(torch.float32, scale=True))"
        )


def _rgb_batches(images, *, max_images: int | None, seed: int) -> Iterator[torch.Tensor]:
    """(B, 3, H, W) batches in [0, 1] from an image tensor or from a dataset's items."""
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"fit_pca_lighting takes RGB images of shape (N, 3, H, W), got "
                f"{tuple(images.shape)}; PCA colour augmentation needs three colour channels"
            )
        if max_images is not None and max_images < len(images):
            chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
            images = images[chosen[:max_images]]
        for start in range(0, len(images), 256):
            batch = images[start:start + 256]
            _check_unit_range(batch, "fit_pca_lighting's images")
            yield batch
        return
    if not isinstance(images, Dataset) or not hasattr(images, "__len__"):
        raise TypeError(
            "fit_pca_lighting takes a tensor of shape (N, 3, H, W) or a Dataset whose items are "
            f"(image, label) with images of shape (3, H, W) in [0, 1]; got {type(images).__name__}"
        )
    order = range(len(images))
    if max_images is not None and max_images < len(images):
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(images), generator=generator)[:max_images].tolist()
    for index in order:
        item = images[index]
        image = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(
                f"fit_pca_lighting needs the dataset's images as tensors of shape (3, H, W) in "
                f"[0, 1]; item {index} is {shape}. Give the dataset a transform that ends with "
                "v2.ToImage() and v2.ToDtype(torch.float32, scale=True), without v2.Normalize"
            )
        _check_unit_range(image, f"item {index} of the dataset")
        yield image.unsqueeze(0)


class PCALighting(nn.Module):
    """The paper's PCA colour augmentation: add ``Σ α_i λ_i p_i`` to every pixel of an image.

    ``eigenvalues`` (3,) are the ``λ_i`` and the columns of ``eigenvectors`` (3, 3) the ``p_i``
    of the covariance of the training set's RGB values (``fit_pca_lighting`` computes them).
    Each call draws ``α ~ N(0, std²)``, three values per image, so the shift is the same for
    every pixel of an image and differs between images. Works on float RGB images in [0, 1]
    before normalisation, of shape (3, H, W) or (N, 3, H, W).

    ``generator`` makes the draws reproducible in a single process. Leave it ``None`` inside a
    ``DataLoader`` with workers: each worker's global random generator is seeded by the loader,
    while a generator passed here would be copied into every worker and repeat the same draws.
    """

    def __init__(self, eigenvalues, eigenvectors, std: float = 0.1, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        eigenvalues = torch.as_tensor(eigenvalues, dtype=torch.float32)
        eigenvectors = torch.as_tensor(eigenvectors, dtype=torch.float32)
        if eigenvalues.shape != (3,) or eigenvectors.shape != (3, 3):
            raise ValueError(
                "PCALighting needs 3 eigenvalues and a 3×3 matrix whose columns are the "
                f"eigenvectors, got shapes {tuple(eigenvalues.shape)} and "
                f"{tuple(eigenvectors.shape)}; fit_pca_lighting(images) makes both"
            )
        if not isinstance(std, (int, float)) or isinstance(std, bool) or not 0 <= std < math.inf:
            raise ValueError(f"std must be a number ≥ 0 (the paper's is 0.1), got {std!r}")
        self.register_buffer("eigenvalues", eigenvalues)
        self.register_buffer("eigenvectors", eigenvectors)
        self.std = float(std)
        self.generator = generator

    def extra_repr(self) -> str:
        values = ", ".join(f"{v:.4g}" for v in self.eigenvalues.tolist())
        return f"eigenvalues=({values}), std={self.std:g}"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            raise TypeError(
                "PCALighting works on float image tensors in [0, 1]; put it after "
                "v2.ToDtype(torch.float32, scale=True)"
            )
        if image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise ValueError(
                f"PCALighting needs RGB images of shape (3, H, W) or (N, 3, H, W), got "
                f"{tuple(image.shape)}; the colour augmentation has nothing to do on grey images "
                "(for the digits, use channels=3 or leave pca_lighting off)"
            )
        count = image.shape[0] if image.dim() == 4 else 1
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        alpha = torch.randn(count, 3, generator=self.generator, device=device) * self.std
        # Row n is Σ_i α_ni λ_i p_i, with the eigenvectors p_i as the columns of the matrix.
        shift = (alpha * self.eigenvalues.to(device)) @ self.eigenvectors.to(device).T  # (n, 3)
        shift = shift.to(device=image.device, dtype=image.dtype)[..., None, None]  # (n, 3, 1, 1)
        shifted = image + (shift if image.dim() == 4 else shift[0])
        if isinstance(image, tv_tensors.TVTensor):  # stay an Image for the v2 transforms after
            shifted = tv_tensors.wrap(shifted, like=image)
        return shifted


def fit_pca_lighting(images, *, std: float = 0.1, max_images: int | None = None,
                     seed: int = 0) -> PCALighting:
    """Fit the paper's PCA colour augmentation to training images.

    ``images`` is a float tensor (N, 3, H, W) of RGB values in [0, 1], or a ``Dataset`` whose
    items are (image, label) with such (3, H, W) images. The 3×3 covariance of the RGB values of
    all their pixels is eigen-decomposed with ``torch.linalg.eigh``; the eigenvalues come back
    largest first, each with its eigenvector as a column. ``max_images`` fits on a seeded random
    sample (decoding a whole photo collection to fit three numbers is a waste).
    """
    if max_images is not None:
        max_images = _whole("max_images", max_images, minimum=1)
    _, covariance = _pixel_moments(_rgb_batches(images, max_images=max_images, seed=seed))
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    # A covariance has no negative eigenvalues; round-off can make a zero one slightly negative.
    eigenvalues = eigenvalues.clamp(min=0)
    return PCALighting(eigenvalues, eigenvectors, std=std)


# --------------------------------------------------------------------------------------------
# The paper's pipeline: resize, crop, flip, (colour), normalise
# --------------------------------------------------------------------------------------------


def _resize_for(image_size: int) -> int:
    """The shorter side to resize to before cropping ``image_size``: 256 for 227 (the paper)."""
    return round(image_size * PAPER_RESIZE / PAPER_CROP)


def _sizes(image_size, resize) -> tuple[int, int]:
    image_size = _whole("image_size", image_size, minimum=1)
    resize = _resize_for(image_size) if resize is None else _whole("resize", resize, minimum=1)
    if resize < image_size:
        raise ValueError(
            f"resize (the shorter side, {resize}) must be at least image_size ({image_size}), "
            f"or the crop would not fit; leave resize=None for {_resize_for(image_size)}"
        )
    return image_size, resize


def _normalize(mean: Sequence[float], std: Sequence[float]) -> v2.Normalize:
    # The paper "subtracted the mean activity over the training set from each pixel". Subtracting
    # each channel's mean and dividing by its standard deviation (ImageNet's by default) is the
    # modern form of the same step.
    if len(mean) != len(std):
        raise ValueError(f"mean and std need one value per channel each, got {len(mean)} and "
                         f"{len(std)} values")
    return v2.Normalize(list(mean), list(std))


def paper_train_transform(image_size: int = PAPER_CROP, *, resize: int | None = None,
                          mean: Sequence[float] = IMAGENET_MEAN,
                          std: Sequence[float] = IMAGENET_STD,
                          pca_lighting: PCALighting | None = None) -> v2.Compose:
    """The paper's training augmentation for a PIL image or a uint8 (C, H, W) tensor.

    Shorter side to ``resize`` (default ``round(image_size·256/227)``, i.e. 256 for 227), the
    central ``resize`` square (Section 2), a random ``image_size`` square crop of it, a
    horizontal flip half of the time, float in [0, 1], the PCA colour shift if
    ``pca_lighting`` is given, then normalisation with ``mean`` and ``std``.
    """
    image_size, resize = _sizes(image_size, resize)
    steps = [
        v2.ToImage(),
        v2.Resize(resize, antialias=True),  # shorter side; resizing uint8 is the fast path
        v2.CenterCrop(resize),  # the paper's images are the central 256×256 squares
        v2.RandomCrop(image_size),
        v2.RandomHorizontalFlip(),  # a mirrored photograph is still a photograph of the class
        v2.ToDtype(torch.float32, scale=True),
    ]
    if pca_lighting is not None:
        if not isinstance(pca_lighting, PCALighting):
            raise TypeError(f"pca_lighting must be a PCALighting (see fit_pca_lighting), got "
                            f"{type(pca_lighting).__name__}")
        steps.append(pca_lighting)  # on [0, 1] RGB, before normalisation
    steps.append(_normalize(mean, std))
    return v2.Compose(steps)


def _stack_crops(crops) -> tv_tensors.Image:
    # A plain function, not v2.Lambda: Lambda would be applied to each crop on its own.
    return tv_tensors.Image(torch.stack(crops))  # (10, C, H, W)


def paper_eval_transform(image_size: int = PAPER_CROP, *, resize: int | None = None,
                         ten_crop: bool = False, mean: Sequence[float] = IMAGENET_MEAN,
                         std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The paper's test-time input: shorter side to ``resize``, then the centre crop.

    With ``ten_crop=True`` the result is a tensor of 10 crops, (10, C, H, W): the four corners
    of the central ``resize`` square (the paper's 256×256 image) and its centre, then the same
    five taken from the horizontally flipped image (torchvision's ``v2.TenCrop``). A
    ``DataLoader`` batches these to (N, 10, C, H, W) for ``ten_crop_predict``.
    """
    image_size, resize = _sizes(image_size, resize)
    steps = [v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(resize)]
    if ten_crop:
        steps += [v2.TenCrop(image_size), _stack_crops]  # a tuple of 10 → one tensor
    else:
        steps.append(v2.CenterCrop(image_size))
    steps += [v2.ToDtype(torch.float32, scale=True), _normalize(mean, std)]
    return v2.Compose(steps)


@torch.no_grad()
def ten_crop_predict(model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """Class probabilities from ten crops per image, as the paper tested.

    ``crops`` has shape (N, 10, C, H, W). The model sees all N·10 crops as one batch; its
    softmax outputs are averaged over each image's crops ("averaging the predictions made by the
    network's softmax layer on the ten patches"). Returns (N, num_classes). Put the model in
    ``eval()`` mode first, so that dropout is off.
    """
    if not isinstance(crops, torch.Tensor) or crops.dim() != 5:
        shape = tuple(crops.shape) if isinstance(crops, torch.Tensor) else type(crops).__name__
        raise ValueError(
            f"ten_crop_predict takes crops of shape (N, 10, C, H, W), got {shape}; make them with "
            "paper_eval_transform(ten_crop=True) and a DataLoader"
        )
    count, per_image = crops.shape[:2]
    logits = model(crops.flatten(0, 1))  # (N·10, num_classes)
    probabilities = logits.float().softmax(dim=-1)
    return probabilities.view(count, per_image, -1).mean(dim=1)  # (N, num_classes)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


class TensorImageDataset(Dataset):
    """Images held in memory as one tensor (N, C, H, W), with a transform applied per item.

    Items are ``(transform(images[i]), int(labels[i]))``. Two datasets can share the same
    tensors with different transforms (augmented for training, plain for evaluation).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *,
                 transform: Callable | None = None):
        if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(f"need images (N, C, H, W) and labels (N,), got shapes "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


# Colour photographs that scikit-learn ships (427×640 each): offline, like the digits.
SAMPLE_PHOTOS = ("china", "flower")


def sample_photo(name: str = "china", *, size: int = PAPER_CROP, grey: bool = False) -> torch.Tensor:
    """A real photograph as a float tensor (3 or 1, size, size) with values in [0, 1].

    As in the paper's test pipeline, the shorter side is resized to ``size`` and the centre
    square is cut out. ``grey=True`` gives one channel (ITU-R 601 luma), for networks trained on
    grey images such as the digits. Nothing is downloaded: the photographs ship inside
    scikit-learn.
    """
    from sklearn.datasets import load_sample_image

    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"no sample photo named {name!r}; the offline ones are {SAMPLE_PHOTOS}")
    size = _whole("size", size, minimum=1)
    photo = np.array(load_sample_image(f"{name}.jpg"))  # a writable copy: (427, 640, 3) uint8
    pixels = torch.from_numpy(photo).permute(2, 0, 1)
    steps = [v2.Resize(size, antialias=True), v2.CenterCrop(size),
             v2.ToDtype(torch.float32, scale=True)]
    if grey:
        steps.append(v2.Grayscale())
    return v2.Compose(steps)(tv_tensors.Image(pixels)).as_subclass(torch.Tensor)


def _digits(*, image_size: int, channels: int, augment: bool, pca_lighting: bool) -> DataBundle:
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing to download
    from sklearn.model_selection import train_test_split

    if channels not in (1, 3):
        raise ValueError(f"the digits are grey: channels must be 1, or 3 to repeat the grey "
                         f"values for a 3-channel network, got {channels!r}")
    if pca_lighting and channels != 3:
        raise ValueError("PCA colour augmentation needs three channels: use channels=3 (the grey "
                         "values repeated) or pca_lighting=False")
    digits = load_digits()
    # Ink counts 0..16 scaled to [0, 1], then upscaled (bilinear, antialiased when shrinking).
    images = torch.from_numpy(digits.images).float().div_(16).unsqueeze(1)  # (1797, 1, 8, 8)
    images = v2.functional.resize(images, [image_size, image_size],
                                  interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    labels = torch.from_numpy(digits.target)
    # Stratified: each digit is a fifth of the validation set as it is of the whole.
    train_idx, val_idx = train_test_split(np.arange(len(labels)), test_size=VAL_FRACTION,
                                          stratify=digits.target, random_state=SPLIT_SEED)
    train_idx, val_idx = np.sort(train_idx).tolist(), np.sort(val_idx).tolist()

    # One grey channel is stored; v2.RGB() repeats it per item, so 3 channels cost no memory.
    mean, covariance = _pixel_moments([images[train_idx]])  # the training split's statistics
    normalize = _normalize([mean.item()] * channels, [covariance.sqrt().item()] * channels)
    to_channels = [v2.RGB()] if channels == 3 else []
    eval_steps = to_channels + [normalize]
    train_steps = list(eval_steps)
    if augment:
        # The paper's random crops shift a 224 patch by up to 32 of 256 pixels (1/8 of the side).
        # The same shifts here come from padding by 1/16 of the side and cropping back, filling
        # with 0 (no ink) so that no stroke is cut off. No horizontal flips: a mirrored 2, 3, 4,
        # 7 or 9 is not that digit any more, so a flip would teach the network wrong labels.
        padding = max(1, round(image_size / 16))
        train_steps = [v2.RandomCrop(image_size, padding=padding, fill=0)] + to_channels
        if pca_lighting:
            rgb = images[train_idx].expand(-1, 3, -1, -1)
            train_steps.append(fit_pca_lighting(rgb))
        train_steps.append(normalize)
    train = TensorImageDataset(images, labels, transform=v2.Compose(train_steps))
    val = TensorImageDataset(images, labels, transform=v2.Compose(eval_steps))
    return DataBundle(train=Subset(train, train_idx), val=Subset(val, val_idx),
                      num_classes=len(digits.target_names), in_channels=channels,
                      image_size=image_size,
                      classes=tuple(str(name) for name in digits.target_names), name="digits",
                      normalize=normalize)


def _with_transform(dataset: Dataset, transform: Callable) -> Dataset:
    """A shallow copy of a torchvision dataset (or a Subset of one) that uses ``transform``."""
    if isinstance(dataset, Subset):
        return Subset(_with_transform(dataset.dataset, transform), dataset.indices)
    dataset = copy.copy(dataset)  # shares the list of files or the array of images
    dataset.transform = transform
    if hasattr(dataset, "transforms"):
        dataset.transforms = datasets.vision.StandardTransform(transform, dataset.target_transform)
    return dataset


def _photo_bundle(train: Dataset, val: Dataset, *, name: str, classes: Sequence[str],
                  image_size: int, augment: bool, pca_lighting: bool,
                  mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                  lighting: PCALighting | None = None) -> DataBundle:
    """Put the paper's pipeline on a training and a validation set of RGB images."""
    if pca_lighting and lighting is None:
        small = v2.Compose([v2.ToImage(), v2.Resize(_PCA_FIT_SIDE, antialias=True),
                            v2.ToDtype(torch.float32, scale=True)])
        lighting = fit_pca_lighting(_with_transform(train, small), max_images=_PCA_FIT_IMAGES,
                                    seed=SPLIT_SEED)
    evaluate = paper_eval_transform(image_size, mean=mean, std=std)
    if augment:
        training = paper_train_transform(image_size, mean=mean, std=std,
                                         pca_lighting=lighting if pca_lighting else None)
    else:
        training = evaluate
    return DataBundle(train=_with_transform(train, training), val=_with_transform(val, evaluate),
                      num_classes=len(classes), in_channels=3, image_size=image_size,
                      classes=tuple(classes), name=name, normalize=_normalize(mean, std))


def ten_crop_val_set(bundle: DataBundle) -> Dataset:
    """The bundle's validation images as the paper tested them: each item is ten crops,
    (10, C, H, W), from ``paper_eval_transform(ten_crop=True)`` with the bundle's own
    normalisation, for ``alexnet_book.train.evaluate``. Photographs only."""
    if bundle.name == "digits":
        raise ValueError(
            "ten crops need photographs: each digit is already the whole 8×8 image scaled up, "
            "with nothing around it to crop; evaluate the digits on their one view (the "
            "bundle's val set; without --ten-crop)")
    normalize = bundle.normalize
    ten_crops = paper_eval_transform(bundle.image_size, ten_crop=True, mean=normalize.mean,
                                     std=normalize.std)
    return _with_transform(bundle.val, ten_crops)


def _not_found(what: str, folder: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} is not in {folder}. Download it with load_data({name!r}, root={str(folder)!r}, "
        f"download=True) (or `alexnet-book train --data {name} --download`), which needs network "
        "access, or point root at the folder that holds it. To work offline, use the default "
        "dataset, 'digits', which ships with scikit-learn."
    )


def _download_failed(what: str, folder: Path, error: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not download {what} into {folder}: {error}. Downloading needs network access; "
        "to work offline, use the default dataset, 'digits'."
    )


def _cifar10(root: Path, *, image_size: int, augment: bool, download: bool,
             pca_lighting: bool) -> DataBundle:
    try:
        train = datasets.CIFAR10(root, train=True, download=download)
        val = datasets.CIFAR10(root, train=False, download=download)  # the 10,000 test images
    except RuntimeError as error:
        if download:
            raise _download_failed("CIFAR-10", root, error) from error
        raise _not_found("CIFAR-10 (the folder cifar-10-batches-py)", root, "cifar10") from error
    except OSError as error:  # no network, a refused connection, a full disk
        raise _download_failed("CIFAR-10", root, error) from error
    # The paper subtracted the mean over its own training set: use CIFAR-10's statistics.
    pixels = torch.from_numpy(train.data).permute(0, 3, 1, 2)  # (50000, 3, 32, 32) uint8
    mean, covariance = _pixel_moments(
        pixels[start:start + 2048].float().div_(255) for start in range(0, len(pixels), 2048)
    )
    lighting = None
    if pca_lighting:
        lighting = fit_pca_lighting(
            pixels[torch.randperm(len(pixels), generator=torch.Generator().manual_seed(SPLIT_SEED))
                   [:5000]].float().div_(255)
        )
    return _photo_bundle(train, val, name="cifar10", classes=train.classes,
                         image_size=image_size, augment=augment, pca_lighting=pca_lighting,
                         mean=mean.tolist(), std=covariance.diagonal().sqrt().tolist(),
                         lighting=lighting)


def _imagenette(root: Path, *, image_size: int, augment: bool, download: bool,
                pca_lighting: bool) -> DataBundle:
    present = [size for size, folder in _IMAGENETTE_SIZES.items() if (root / folder).is_dir()]
    if not present and not download:
        raise _not_found("Imagenette (a folder imagenette2-320, imagenette2 or imagenette2-160)",
                         root, "imagenette")
    size = present[0] if present else "320px"
    try:
        train = datasets.Imagenette(root, split="train", size=size, download=download)
        val = datasets.Imagenette(root, split="val", size=size)
    except (OSError, RuntimeError) as error:
        if download:
            raise _download_failed("Imagenette", root, error) from error
        raise
    # torchvision lists each class under several names ("tench", "Tinca tinca"): keep the first.
    classes = [names[0] for names in train.classes]
    return _photo_bundle(train, val, name="imagenette", classes=classes, image_size=image_size,
                         augment=augment, pca_lighting=pca_lighting)


def _load_image(path: str):
    """torchvision's image loader, with an error that names the file it could not read."""
    try:
        return datasets.folder.default_loader(path)
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for unreadable files
        raise OSError(
            f"could not read the image {path}: {error}. The file is damaged or not an image: "
            "delete it, or replace it with a good copy"
        ) from error


class _ImageFolder(datasets.ImageFolder):
    """torchvision's ImageFolder that skips hidden folders (.ipynb_checkpoints is no class)."""

    def find_classes(self, directory):
        classes = sorted(entry.name for entry in os.scandir(directory)
                         if entry.is_dir() and not entry.name.startswith("."))
        if not classes:
            raise FileNotFoundError(
                f"no class folders in {directory}: an image folder holds one folder per class, "
                f"e.g. {os.path.join(directory, 'cat', '1.jpg')} and "
                f"{os.path.join(directory, 'dog', '2.jpg')}, "
                "either directly or inside train/ and val/"
            )
        return classes, {name: index for index, name in enumerate(classes)}


def _open_folder(directory: Path) -> datasets.ImageFolder:
    folder = _ImageFolder(directory, loader=_load_image, allow_empty=True)
    counts = Counter(folder.targets)
    empty = [name for index, name in enumerate(folder.classes) if counts[index] == 0]
    if empty:
        extensions = ", ".join(datasets.folder.IMG_EXTENSIONS)
        raise FileNotFoundError(
            f"the class folder {directory / empty[0]} (class {empty[0]!r}) holds no images"
            + (f", nor do {', '.join(map(repr, empty[1:]))}" if len(empty) > 1 else "")
            + f". Add images ({extensions}) or remove the empty folder"
        )
    return folder


def _split_folder(folder: datasets.ImageFolder, directory: Path) -> tuple[Subset, Subset]:
    from sklearn.model_selection import train_test_split

    try:
        train_idx, val_idx = train_test_split(np.arange(len(folder.targets)),
                                              test_size=VAL_FRACTION, stratify=folder.targets,
                                              random_state=SPLIT_SEED)
    except ValueError as error:
        raise ValueError(
            f"cannot split the {len(folder.targets)} images of {directory} 80/20 with every class "
            f"in both parts ({error}). Add images (each class needs at least 2, and a fifth of "
            f"all images must be at least one per class), or make {directory / 'train'} and "
            f"{directory / 'val'} yourself"
        ) from error
    return Subset(folder, np.sort(train_idx).tolist()), Subset(folder, np.sort(val_idx).tolist())


def _image_folder(path: str, *, image_size: int, augment: bool, pca_lighting: bool) -> DataBundle:
    directory = Path(path).expanduser()
    if not path or not directory.is_dir():
        raise FileNotFoundError(
            f"the image folder {str(directory.resolve()) if path else '(empty)'} does not exist: "
            "name a folder with 'imagefolder:PATH' that holds train/ and val/, or one folder "
            "per class"
        )
    train_dir, val_dir = directory / "train", directory / "val"
    if train_dir.is_dir() and val_dir.is_dir():
        train, val = _open_folder(train_dir), _open_folder(val_dir)
        if train.classes != val.classes:
            raise ValueError(
                f"{train_dir} and {val_dir} must hold the same class folders; only in train: "
                f"{sorted(set(train.classes) - set(val.classes))}, only in val: "
                f"{sorted(set(val.classes) - set(train.classes))}"
            )
        classes = train.classes
    elif train_dir.is_dir() or val_dir.is_dir():
        have, lack = (train_dir, val_dir) if train_dir.is_dir() else (val_dir, train_dir)
        raise FileNotFoundError(
            f"{have} exists but {lack} does not: give both, or neither and let one folder per "
            f"class in {directory} be split 80/20"
        )
    else:
        whole = _open_folder(directory)
        train, val = _split_folder(whole, directory)
        classes = whole.classes
    return _photo_bundle(train, val, name=f"imagefolder:{path}", classes=classes,
                         image_size=image_size, augment=augment, pca_lighting=pca_lighting)


def load_data(name: str = "digits", *, root: str | Path = "data", image_size: int | None = None,
              channels: int | None = None, augment: bool = True, download: bool = False,
              pca_lighting: bool = False) -> DataBundle:
    """The training and validation sets of a dataset, ready for AlexNet.

    - ``name``: one of ``DATASET_NAMES``: ``"digits"`` (offline, the default), ``"cifar10"``,
      ``"imagenette"``, or ``"imagefolder:PATH"`` (PATH relative to the working directory).
    - ``root``: the folder torchvision's datasets live in (CIFAR-10 and Imagenette).
    - ``image_size``: side of the square images (default 67 for digits and CIFAR-10, 227 for
      photographs; see ``DEFAULT_IMAGE_SIZES``).
    - ``channels``: 1 or 3 for the digits (default 1); the photo datasets are RGB (3).
    - ``augment``: random crops (and flips, for photographs) on the training set; off, the
      training set is prepared as the validation set is.
    - ``download``: let torchvision download CIFAR-10 or Imagenette into ``root``.
    - ``pca_lighting``: add the paper's PCA colour augmentation, fitted to the training images.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, one of {DATASET_NAMES}, got {name!r}")
    kind = "imagefolder" if name.startswith("imagefolder:") else name
    if kind not in DEFAULT_IMAGE_SIZES:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)} (PATH is a folder "
            "of images); 'digits' works offline"
        )
    image_size = DEFAULT_IMAGE_SIZES[kind] if image_size is None else image_size
    image_size = _whole("image_size", image_size, minimum=1)
    if kind == "digits":
        channels = 1 if channels is None else channels
        return _digits(image_size=image_size, channels=channels, augment=augment,
                       pca_lighting=pca_lighting)
    if channels not in (None, 3):
        raise ValueError(f"{name!r} holds RGB images: channels must be 3 (or None), got "
                         f"{channels!r}")
    options = dict(image_size=image_size, augment=augment, pca_lighting=pca_lighting)
    if kind == "imagefolder":
        return _image_folder(name[len("imagefolder:"):], **options)
    root = Path(root).expanduser()
    if kind == "cifar10":
        return _cifar10(root, download=download, **options)
    return _imagenette(root, download=download, **options)


# --------------------------------------------------------------------------------------------
# Loading batches
# --------------------------------------------------------------------------------------------


def _replicas(distributed: bool) -> tuple[int, int]:
    if not distributed:
        return 1, 0
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "make_loader(distributed=True) needs torch.distributed to be initialised: start the "
            "script with torchrun and call torch.distributed.init_process_group() first, or pass "
            "distributed=False"
        )
    return dist.get_world_size(), dist.get_rank()


def _default_workers(device: torch.device, distributed: bool) -> int:
    # On a CPU (or Apple's MPS) the data are small and in memory: starting worker processes costs
    # more than it saves, and the workers would compete with the model for the same cores.
    if device.type != "cuda":
        return 0
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    if distributed:  # torchrun starts one process per GPU on a machine; share the cores
        cores = max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return min(8, cores)


def _sampler_seed(seed: int) -> int:
    """The sampler shuffles with seed + epoch: mixing the seed first keeps seed s at epoch e + 1
    from repeating the order of seed s + 1 at epoch e."""
    return int(np.random.SeedSequence([seed]).generate_state(1, np.uint32)[0])


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    """One seed for the workers' random augmentations, different for every (seed, epoch, rank)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0])


def make_loader(dataset: Dataset, batch_size: int, *, train: bool,
                device: torch.device | str = "cpu", num_workers: int | None = None,
                seed: int = 0, epoch: int = 0, distributed: bool = False,
                drop_last: bool | None = None) -> DataLoader:
    """A ``DataLoader`` for one epoch, in an order fixed by ``seed`` and ``epoch``.

    - ``batch_size``: per process. With ``distributed=True`` the global batch is
      ``batch_size × world size``.
    - ``train``: shuffle (and by default drop the last, incomplete batch). A batch larger than
      the data is an error when batches are dropped (nothing would be loaded); otherwise, as
      for a small validation set, it shrinks to the data.
    - ``device``: where the batches go. On CUDA: ``min(8, cores)`` workers (cores shared between
      the processes torchrun starts on a machine), pinned memory, persistent workers, 4 batches
      prefetched per worker; elsewhere 0 workers.
    - ``seed``, ``epoch``: the order. The sampler is always a ``DistributedSampler`` (one
      replica when not distributed), so one process with batch B·k sees in each step the same
      images as k processes with batch B, and a run resumed at ``epoch`` sees what an
      uninterrupted one would. The loader's generator, seeded from (seed, epoch, rank), seeds the
      workers' random augmentations. With 0 workers the augmentations draw from the main
      process's random generator instead: seed it (``torch.manual_seed``) for repeatable runs.

    Make a new loader each epoch. For evaluation across processes, ``DistributedSampler`` pads
    the data to an even split, so a few images may be counted twice.
    """
    batch_size = _whole("batch_size", batch_size, minimum=1)
    seed = _whole("seed", seed, minimum=0)
    epoch = _whole("epoch", epoch, minimum=0)
    device = torch.device(device)
    replicas, rank = _replicas(distributed)
    sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=bool(train),
                                 seed=_sampler_seed(seed))
    sampler.set_epoch(epoch)
    share = len(sampler)
    drop = bool(train) if drop_last is None else drop_last
    if 0 < share < batch_size and not drop:
        batch_size = share  # evaluation keeps every item: one smaller batch loses nothing
    if batch_size > share:
        where = f"{len(dataset)} items" + (f" over {replicas} processes" if replicas > 1 else "")
        fits = 2 ** int(math.log2(share)) if share else 0
        raise ValueError(
            f"batch_size {batch_size} is larger than this process's share of the dataset, "
            f"{share} ({where}); use batch_size ≤ {share}, e.g. {fits}"
            if share else f"the dataset is empty ({where}): there is nothing to load"
        )
    if num_workers is None:
        num_workers = _default_workers(device, distributed)
    num_workers = _whole("num_workers", num_workers, minimum=0)
    workers = num_workers > 0
    generator = torch.Generator().manual_seed(_loader_seed(seed, epoch, rank))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",  # page-locked batches copy to the GPU asynchronously
        drop_last=drop,
        persistent_workers=workers,
        prefetch_factor=4 if workers else None,  # keeps JPEG decoding ahead of the GPU
        generator=generator,
    )
