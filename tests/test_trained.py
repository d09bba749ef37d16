"""The shared trained network: deterministic, cached once, and never stale or fatal offline."""

import pytest
import torch
import torchvision

from alexnet_book import trained
from alexnet_book.trained import (SmallNetRecipe, cache_dir, pretrained_torchvision_alexnet,
                                  small_trained_alexnet)

ONE_EPOCH = SmallNetRecipe(epochs=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("ALEXNET_BOOK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "alexnet_book"


def test_training_is_deterministic(cache):
    first = small_trained_alexnet(ONE_EPOCH, cache=False)
    second = small_trained_alexnet(ONE_EPOCH, cache=False)
    assert _same_weights(first.model, second.model)
    assert first.path is None and not cache.exists()  # cache=False writes nothing


def test_first_call_trains_and_fills_the_cache_later_calls_load(cache):
    first = small_trained_alexnet(ONE_EPOCH)
    assert not first.from_cache and first.path.parent == cache and first.path.exists()
    second = small_trained_alexnet(ONE_EPOCH)
    assert second.from_cache and _same_weights(first.model, second.model)
    assert second.history.to_dict() == first.history.to_dict()
    assert second.seconds == first.seconds and not second.model.training
    assert len(second.history) == 1 and second.data.name == "digits"


def test_another_recipe_gets_another_file(cache):
    assert trained._cache_path(ONE_EPOCH) != trained._cache_path(SmallNetRecipe(epochs=2))


def test_a_corrupt_cache_file_is_replaced_with_a_warning(cache):
    path = trained._cache_path(ONE_EPOCH)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="ignoring the cached network"):
        net = small_trained_alexnet(ONE_EPOCH)
    assert not net.from_cache and small_trained_alexnet(ONE_EPOCH).from_cache


def test_the_recipe_is_checked():
    with pytest.raises(TypeError, match="SmallNetRecipe"):
        small_trained_alexnet({"epochs": 1})


def test_the_shared_network_learns_the_digits():
    # The chapters say it learned: with the default recipe it must be far above chance (10%).
    # The user's cache, as the chapters use it: a test run before the book fills it for them.
    net = small_trained_alexnet()
    assert net.history.best.val_top1 > 0.9
    assert net.model.conv1.weight.shape == (12, 1, 11, 11)  # 96/8 grey kernels


def test_pretrained_weights_offline_give_none(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(trained, "_reachable", lambda url, timeout: False)
    assert pretrained_torchvision_alexnet() is None
    assert pretrained_torchvision_alexnet(download=False) is None


def test_pretrained_weights_from_the_hub_cache(tmp_path, monkeypatch):
    # A file where torch.hub keeps downloads is used without any network.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(trained, "_reachable", lambda url, timeout: pytest.fail("no network use"))
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet().eval()
    name = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (tmp_path / "checkpoints").mkdir()
    torch.save(theirs.state_dict(), tmp_path / "checkpoints" / name)
    ours = pretrained_torchvision_alexnet(download=False)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_the_description_says_what_how_long_and_how_well(cache):
    net = small_trained_alexnet(ONE_EPOCH)
    text = net.describe()
    assert "12-32-48-48-32 kernels" in text and "512 hidden units" in text  # 96…256 ÷ 8
    assert "1,437 training images of 1×67×67" in text  # 80% of scikit-learn's 1,797 digits
    assert f"1 epochs in {net.seconds:.1f} s" in text and "trained just now" in text
    assert f"top-1 {net.history[-1].val_top1:.1%}" in text
    assert "loaded from the cache" in small_trained_alexnet(ONE_EPOCH).describe()
