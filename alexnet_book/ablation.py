"""Ablations: the same small AlexNet trained with one of the paper's ideas on and off.

Sections 3 and 4 of the paper credit each idea with a measured gain (ReLU, the two-GPU split,
local response normalisation, overlapping pooling, dropout, data augmentation).
``run_ablation(idea)`` repeats such a comparison at a size a CPU can afford: the paper's
network at a fraction of its width on the offline digits, trained with ``alexnet_book.train``
from the same seeds with the idea on and off, nothing else changed. A run is reproducible for a
given number of CPU threads (the kernels split their sums by thread). Every run is cached
(``alexnet_book.trained.cache_dir()``) under a key of the network and the settings it trains
with, so a chapter that is executed again, or by several tools in turn, trains each run only
once, and two chapters that ask for the same network share it.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ._checks import whole_number
from .data import load_data
from .model import AlexNet
from .train import History, TrainConfig, train, write_atomically
from .trained import cache_dir, cache_key

__all__ = ["Idea", "IDEAS", "AblationSettings", "AblationResult", "run_ablation", "epochs_text"]


@dataclass(frozen=True)
class Idea:
    """One of the paper's ideas as a pair of settings: the paper's (``on``) and without it."""

    name: str
    section: str
    on_label: str
    off_label: str
    on: dict  # AlexNet options, or {"augment": ...} for the data
    off: dict


IDEAS: dict[str, Idea] = {
    "relu": Idea("relu", "3.1", "ReLU", "tanh", {"activation": "relu"}, {"activation": "tanh"}),
    # The paper's comparison for its two-GPU split: one column of half the kernels in each conv
    # layer but the last (and the same fully-connected layers), about as many parameters.
    "two_gpus": Idea("two_gpus", "3.2", "two columns", "one column, half the kernels",
                     {"groups": 2}, {"groups": 1, "kernels": (48, 128, 192, 192, 256)}),
    "lrn": Idea("lrn", "3.3", "with LRN", "without LRN", {"norm": "lrn"}, {"norm": "none"}),
    "overlapping_pooling": Idea("overlapping_pooling", "3.4", "overlapping 3×3, stride 2",
                                "non-overlapping 2×2, stride 2", {"pooling": "overlapping"},
                                {"pooling": "non-overlapping"}),
    "dropout": Idea("dropout", "4.2", "dropout 0.5", "no dropout", {"dropout": 0.5},
                    {"dropout": 0.0}),
    "augmentation": Idea("augmentation", "4.1", "with augmentation", "without augmentation",
                         {"augment": True}, {"augment": False}),
}
_DATA_OPTIONS = ("augment",)


@dataclass(frozen=True)
class AblationSettings:
    """Everything the two arms share. The defaults run on a CPU in well under a minute."""

    data: str = "digits"
    width: float = 1 / 8
    image_size: int | None = None  # None: the data set's default (67 for the digits)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.01
    init: str = "kaiming"  # the paper's N(0, 0.01) does not train at this width
    seeds: tuple[int, ...] = (0, 1, 2)
    train_size: int | None = None  # use only the first N training images (None: all)
    device: str = "cpu"  # "auto" for a GPU run; the CPU keeps the small runs reproducible
    amp: str = "off"
    download: bool = False
    # The paper's PCA colour shift in both arms' training data (photo data sets only: the grey
    # digits have no colour to shift).
    pca_lighting: bool = False
    base: dict = field(default_factory=dict)  # AlexNet options both arms share

    def __post_init__(self):
        whole_number("epochs", self.epochs, minimum=1)
        whole_number("batch_size", self.batch_size, minimum=1)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed, e.g. (0, 1, 2)")
        for seed in self.seeds:
            whole_number("seed", seed, minimum=0)
        if self.train_size is not None:
            whole_number("train_size", self.train_size, minimum=1)


@dataclass
class AblationResult:
    """The histories of every run, by arm label, one per seed in ``settings.seeds`` order."""

    idea: Idea
    settings: AblationSettings
    runs: dict[str, list[History]]
    seconds: float  # spent training in this call (0 when everything came from the cache)
    cached: int  # how many runs came from the cache

    @property
    def labels(self) -> tuple[str, str]:
        return (self.idea.on_label, self.idea.off_label)

    def final(self, column: str, label: str) -> list[float]:
        """``column`` of the last epoch of each seed's run of arm ``label``."""
        return [history.column(column)[-1] for history in self._arm(label)]

    def best(self, column: str, label: str) -> list[float]:
        """The highest ``column`` over the epochs of each seed's run of arm ``label``."""
        return [max(history.column(column)) for history in self._arm(label)]

    def mean_curve(self, column: str, label: str) -> list[float]:
        """``column`` per epoch, averaged over the seeds."""
        curves = [history.column(column) for history in self._arm(label)]
        return [statistics.fmean(values) for values in zip(*curves)]

    def first_epoch_below(self, column: str, label: str, threshold: float) -> list[int | None]:
        """For each seed, the first epoch (1-based) at which ``column`` fell below
        ``threshold``, or None if it never did (e.g. ``column="val_error"``)."""
        found = []
        for history in self._arm(label):
            values = history.column(column)
            found.append(next((epoch for epoch, v in enumerate(values, 1) if v < threshold), None))
        return found

    def seed_spread(self, column: str) -> float:
        """How far apart the seeds of one arm end: the standard deviation over the seeds of the
        last epoch's ``column``, averaged over the arms (nan with a single seed)."""
        if len(self.settings.seeds) < 2:
            return float("nan")
        return statistics.fmean(statistics.stdev(self.final(column, label)) for label in self.runs)

    def curves(self, column: str, label: str) -> list[list[float]]:
        """``column`` per epoch, one list per seed's run of arm ``label``."""
        return [history.column(column) for history in self._arm(label)]

    def _arm(self, label: str) -> list[History]:
        if label not in self.runs:
            raise ValueError(f"no arm {label!r}; this ablation's arms are {list(self.runs)}")
        return self.runs[label]


def epochs_text(epochs: list[int | None]) -> str:
    """First epochs below a threshold, as prose says them: ``[3, None, 4]`` → "3, never, 4"."""
    return ", ".join("never" if epoch is None else str(epoch) for epoch in epochs)


def _run_key(arm: dict, settings: AblationSettings, seed: int) -> str:
    """The key of one run, from the network it builds (every option resolved) and its data, so
    that two ideas asking for the same network (the paper's, say) share one run."""
    network = {**settings.base, **{k: v for k, v in arm.items() if k not in _DATA_OPTIONS}}
    resolved = AlexNet("paper", width=settings.width, init=settings.init, **network).options
    data = {option: arm.get(option, True) for option in _DATA_OPTIONS}
    shared = {k: v for k, v in asdict(settings).items() if k not in ("seeds", "base")}
    return cache_key(resolved, data, shared, seed)


def _cache_path(arm: dict, settings: AblationSettings, seed: int) -> Path:
    return cache_dir() / "ablations" / f"run-{_run_key(arm, settings, seed)}.json"


def _read_history(path: Path) -> History | None:
    try:
        return History.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _train_arm(arm: dict, settings: AblationSettings, seed: int, progress: bool) -> History:
    model_options = {**settings.base, **{k: v for k, v in arm.items() if k not in _DATA_OPTIONS}}
    data = load_data(settings.data, image_size=settings.image_size, download=settings.download,
                     augment=arm.get("augment", True),
                     pca_lighting=settings.pca_lighting and arm.get("augment", True))
    train_set = data.train
    if settings.train_size is not None:
        train_set = torch.utils.data.Subset(train_set, range(min(settings.train_size, len(train_set))))
    torch.manual_seed(seed)
    model = AlexNet("paper", num_classes=data.num_classes, in_channels=data.in_channels,
                    input_size=data.image_size, width=settings.width, init=settings.init,
                    **model_options)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                         seed=seed, device=settings.device, amp=settings.amp, progress=progress)
    return train(model, train_set, data.val, config)


def run_ablation(idea: str, settings: AblationSettings | None = None, *, cache: bool = True,
                 progress: bool = False, extra_arms: dict[str, dict] | None = None) -> AblationResult:
    """Train the small network with ``idea`` on and off, once per seed, and return the runs.

    ``idea`` is one of ``IDEAS``: ``"relu"`` (against tanh), ``"two_gpus"`` (two columns
    against the paper's one-GPU net), ``"lrn"``, ``"overlapping_pooling"``, ``"dropout"``,
    ``"augmentation"``. ``extra_arms`` adds arms of the same comparison, ``{label: settings}``
    in the form of ``Idea.on`` (for example ``{"with batch norm": {"norm": "batchnorm"}}`` next
    to LRN on and off). Runs already in the cache are loaded instead of trained;
    ``cache=False`` trains everything and stores nothing.
    """
    if idea not in IDEAS:
        raise ValueError(f"unknown idea {idea!r}; the ideas are {sorted(IDEAS)}")
    settings = AblationSettings() if settings is None else settings
    if not isinstance(settings, AblationSettings):
        raise TypeError(f"settings must be an AblationSettings, got {type(settings).__name__}")
    spec = IDEAS[idea]
    clash = sorted(set(settings.base) & (set(spec.on) | set(spec.off)))
    if clash:
        raise ValueError(f"settings.base sets {clash}, which the {idea!r} ablation switches; "
                         "leave them out of base")
    arms = {spec.on_label: spec.on, spec.off_label: spec.off}
    for label, arm in (extra_arms or {}).items():
        if label in arms or not isinstance(arm, dict):
            raise ValueError(f"extra arm {label!r} must have a new label (not {list(arms)}) "
                             "and a dict of settings, e.g. {'norm': 'batchnorm'}")
        arms[label] = arm
    runs, spent, cached = {}, 0.0, 0
    for label, arm in arms.items():
        runs[label] = []
        for seed in settings.seeds:
            path = _cache_path(arm, settings, seed) if cache else None
            history = _read_history(path) if path else None
            if history is None:
                start = time.perf_counter()
                history = _train_arm(arm, settings, seed, progress)
                spent += time.perf_counter() - start
                if path:
                    text = json.dumps(history.to_dict())
                    write_atomically(path, lambda file: file.write(text.encode()))
            else:
                cached += 1
            runs[label].append(history)
    return AblationResult(idea=spec, settings=settings, runs=runs, seconds=spent, cached=cached)
