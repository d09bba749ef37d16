"""The small trained AlexNet that the layer chapters look at, trained once and cached.

No trained weights can be downloaded where the book is built, and the chapters that show learned
kernels, feature maps or nearest neighbours need a network that has learned something. This module
trains one: the paper's network at an eighth of its width, on the offline digits, with the
paper's recipe except for He et al.'s initialisation (the training chapter shows why the paper's
stalls at this width). It takes seconds on a CPU and is deterministic: on the CPU with a fixed
seed, the same versions of the package and PyTorch and the same number of threads (CPU kernels
split their sums by thread) give the same weights.

The first call trains it and saves it under the user's cache folder (``cache_dir()``: the
``ALEXNET_BOOK_CACHE`` environment variable, else ``$XDG_CACHE_HOME/alexnet_book``, else
``~/.cache/alexnet_book``); later calls, from any chapter, load it. Nothing is committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch

from . import __version__
from .data import DataBundle, load_data
from .model import AlexNet
from .train import History, TrainConfig, train, write_atomically

__all__ = ["SmallNetRecipe", "SMALL_NET", "TrainedNet", "cache_dir", "small_trained_alexnet",
           "pretrained_torchvision_alexnet"]


@dataclass(frozen=True)
class SmallNetRecipe:
    """What the shared network is and how it is trained."""

    data: str = "digits"  # the offline default: 1,797 grey 8×8 digits upscaled to 67×67
    width: float = 1 / 8  # an eighth of the paper's kernels and hidden units in every layer
    init: str = "kaiming"  # He et al.: the paper's N(0, 0.01) stalls at this width
    epochs: int = 15
    batch_size: int = 64
    seed: int = 0


SMALL_NET = SmallNetRecipe()


@dataclass(frozen=True)
class TrainedNet:
    """A trained network with what a chapter needs to say about it."""

    model: AlexNet  # in evaluation mode, on the CPU
    data: DataBundle  # the data it was trained and validated on
    history: History  # loss and accuracy per epoch
    recipe: SmallNetRecipe
    seconds: float  # how long the training took when it was run
    path: Path | None  # the cache file, or None when not cached
    from_cache: bool  # True when this call loaded it instead of training

    @property
    def final(self):
        """The last epoch's numbers: the model holds that epoch's weights (not the best's)."""
        return self.history[-1]

    def describe(self) -> str:
        """What this network is, what it was trained on, for how long, and how well it does."""
        kernels = "-".join(str(self.model.get_submodule(f"conv{i}").out_channels)
                           for i in range(1, 6))
        size = self.data.image_size
        where = (f"loaded from the cache ({self.path})" if self.from_cache
                 else "trained just now" + (f", cached in {self.path}" if self.path else ""))
        top5 = "" if self.final.val_top5 is None else f", top-5 {self.final.val_top5:.1%}"
        return (f"{self.model.title}: {kernels} kernels, {self.model.fc7.out_features} hidden "
                f"units. Trained on {self.data.name} ({len(self.data.train):,} training images "
                f"of {self.data.in_channels}×{size}×{size}, {self.data.num_classes} classes) for "
                f"{len(self.history)} epochs in {self.seconds:.1f} s on the CPU; {where}. "
                f"Validation accuracy after the last epoch: top-1 {self.final.val_top1:.1%}"
                f"{top5} on {len(self.data.val):,} images.")


def cache_dir() -> Path:
    """Where the package keeps what it computes once: ``ALEXNET_BOOK_CACHE``, else the user's
    cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``) under ``alexnet_book``."""
    if os.environ.get("ALEXNET_BOOK_CACHE"):
        return Path(os.environ["ALEXNET_BOOK_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "alexnet_book"


# Part of every cache key: raise it when a change to the package alters what a run computes
# (2: the data order and the random streams are seeded per seed and rank, not seed + epoch).
RUN_NUMBERS_VERSION = 2


def cache_key(*what) -> str:
    """A short hash of ``what`` and of everything else that decides a run's numbers.

    A new package or PyTorch version gives a new key, never a stale result; so does another
    number of CPU threads, because the kernels split their sums by thread, which changes the
    last bits and, over many steps, the run.
    """
    torch_version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    text = json.dumps([*what, __version__, RUN_NUMBERS_VERSION, torch_version,
                       torch.get_num_threads()],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_path(recipe: SmallNetRecipe) -> Path:
    digest = cache_key(asdict(recipe))
    return cache_dir() / f"small_alexnet-{recipe.data}-{digest}.pt"


def _build(recipe: SmallNetRecipe, data: DataBundle) -> AlexNet:
    torch.manual_seed(recipe.seed)
    return AlexNet("paper", num_classes=data.num_classes, in_channels=data.in_channels,
                   input_size=data.image_size, width=recipe.width, init=recipe.init)


def _train(recipe: SmallNetRecipe, data: DataBundle, progress: bool) -> tuple[AlexNet, History, float]:
    model = _build(recipe, data)
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, seed=recipe.seed,
                         device="cpu", amp="off", progress=progress, num_workers=0)
    start = time.perf_counter()
    history = train(model, data.train, data.val, config)
    return model, history, time.perf_counter() - start


def _load(path: Path, recipe: SmallNetRecipe, data: DataBundle):
    """(model, history, seconds) from the cache file, or None when it is missing or unusable."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = _build(recipe, data)
        model.load_state_dict(saved["model"])
        return model, History.from_dict(saved["history"]), float(saved["seconds"])
    except Exception as error:  # a truncated file, or one from another version: train again
        warnings.warn(f"ignoring the cached network {path} ({type(error).__name__}: {error}); "
                      "training it again", stacklevel=3)
        return None


def small_trained_alexnet(recipe: SmallNetRecipe = SMALL_NET, *, cache: bool = True,
                          retrain: bool = False, progress: bool = False) -> TrainedNet:
    """The small AlexNet trained on the offline digits, from the cache when it is there.

    ``cache=False`` trains without reading or writing the cache; ``retrain=True`` trains and
    overwrites it. The model comes back in evaluation mode.
    """
    if not isinstance(recipe, SmallNetRecipe):
        raise TypeError(f"recipe must be a SmallNetRecipe, got {type(recipe).__name__}")
    data = load_data(recipe.data)
    path = _cache_path(recipe) if cache else None
    loaded = _load(path, recipe, data) if cache and not retrain else None
    if loaded is None:
        model, history, seconds = _train(recipe, data, progress)
        if cache:
            state = {"model": model.state_dict(), "history": history.to_dict(),
                     "seconds": seconds, "recipe": asdict(recipe)}
            write_atomically(path, partial(torch.save, state))
    else:
        model, history, seconds = loaded
    return TrainedNet(model=model.eval(), data=data, history=history, recipe=recipe,
                      seconds=seconds, path=path, from_cache=loaded is not None)


def _reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def pretrained_torchvision_alexnet(*, download: bool = True, timeout: float = 3.0):
    """torchvision's ImageNet-trained AlexNet in this package's ``"torchvision"`` variant, or
    ``None`` when its weights are neither in torch's hub cache nor downloadable now.

    The weights (233 MB) come from torchvision's ``AlexNet_Weights.IMAGENET1K_V1``; with
    ``download=False``, or when the download server cannot be reached within ``timeout``
    seconds, only an already cached file is used. Never raises for being offline.
    """
    from urllib.parse import urlparse

    from torchvision.models import AlexNet_Weights

    from .model import from_torchvision

    weights = AlexNet_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if not cached.exists() and not (download and _reachable(weights.url, timeout)):
        return None
    try:
        state = weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as error:  # offline after all, or a broken download
        warnings.warn(f"torchvision's AlexNet weights could not be loaded ({error})", stacklevel=2)
        return None
    return from_torchvision(state).eval()
