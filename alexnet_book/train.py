"""The paper's training recipe (Section 5), with PyTorch's own pieces.

Krizhevsky, Sutskever and Hinton trained with stochastic gradient descent: batches of 128,
momentum 0.9, weight decay 0.0005, a learning rate of 0.01 for all layers, divided by 10 when
the validation error stopped improving, three times before the end, about 90 passes over the
data. Here that is ``torch.optim.SGD`` and ``torch.optim.lr_scheduler.ReduceLROnPlateau`` on the
validation top-1 error, with what a run needs today around it:

- mixed precision with ``torch.autocast`` (bf16, or fp16 with ``torch.amp.GradScaler``),
  channels-last memory, ``torch.compile`` and conv1 computed by space-to-depth
  (``alexnet_book.space_to_depth``), each a switch in ``TrainConfig``;
- a checkpoint after every epoch, written atomically (a temporary file, then ``os.replace``)
  and loadable with ``torch.load(weights_only=True)``; ``resume=`` continues a run so that it
  ends with exactly the weights of a run that was never stopped;
- a loss that turns NaN or infinite stops the run at once (``TrainingDiverged``) and leaves the
  last good checkpoint as it was;
- ``DistributedDataParallel`` when started under ``torchrun``: the batch in ``TrainConfig`` is
  the global one, split over the processes, and the metrics are summed over all of them.

``train`` trains whatever model it is given: the paper's initialisation with lr 0.01 can diverge
or stall on small data, and the trainer says so rather than hiding it.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from ._checks import whole_number
from .metrics import top_k_hits
from .space_to_depth import with_space_to_depth_stem

__all__ = [
    "TrainConfig",
    "EpochStats",
    "History",
    "TrainingDiverged",
    "train",
    "Evaluation",
    "evaluate",
    "pick_device",
    "resolve_amp",
    "make_optimizer",
    "make_scheduler",
    "load_checkpoint",
    "AMP_MODES",
    "CHECKPOINT_NAME",
]

AMP_MODES = ("auto", "bf16", "fp16", "off")
CHECKPOINT_NAME = "last.pt"
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------------------------------------
# The recipe as data


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the paper's (Section 5) where the paper gives a number.

    The update is PyTorch's SGD: ``weight_decay`` adds wd·w to the gradient g, then
    v ← μ·v + g and w ← w − ε·v. The paper writes v ← 0.9·v − 0.0005·ε·w − ε·∂L/∂w and
    w ← w + v, with the learning rate ε inside the velocity. The two give the same weights while
    ε is constant (PyTorch's v is the paper's −v/ε). From a change of ε on they differ: PyTorch
    scales the velocity left from earlier steps by the new ε, the paper's keeps the old ε in it,
    a difference that shrinks by 0.9 a step but stays in the weights.
    """

    epochs: int = 90  # "roughly 90 cycles through the training set"
    batch_size: int = 128  # the GLOBAL batch; each of N processes takes batch_size / N
    lr: float = 0.01  # "equal for all layers"
    momentum: float = 0.9
    weight_decay: float = 5e-4  # "small amount of weight decay ... was important for learning"
    lr_factor: float = 0.1  # "divide the learning rate by 10 when the validation error ..."
    max_lr_drops: int = 3  # "... reduced three times prior to termination"
    # The paper does not say how long "stopped improving" is. Two epochs tolerate one noisy
    # validation error without waiting so long that the book's short runs (tens of epochs)
    # never see a drop; a 90-epoch ImageNet run may want 5.
    plateau_patience: int = 2
    # Linear warm-up over this many epochs, step by step, before the plateau schedule starts.
    # Not in the paper (Goyal et al. 2017): it helps large global batches and small data where
    # lr 0.01 from the first step diverges. 0 follows the paper.
    warmup_epochs: int = 0
    label_smoothing: float = 0.0  # not in the paper (Szegedy et al. 2016); 0 follows it
    device: str = "auto"  # "auto": CUDA, then Apple MPS, then the CPU; or e.g. "cuda:1"
    # "auto": bf16 on CUDA that supports it, fp16 with a gradient scaler on older CUDA, off on
    # MPS and the CPU (bf16 autocast on a CPU is slower than fp32 on most CPUs).
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: bool = False  # NHWC memory; faster on tensor-core GPUs with amp
    compile: bool = False  # torch.compile: slower first epoch, faster after (fuses the LRN)
    # conv1 as a stride-1 convolution over 4×4 blocks of the image: the same function and
    # parameters, a third faster per step on an H200, a few percent slower on a CPU.
    space_to_depth: bool = False
    seed: int = 0  # seeds torch, numpy and random (plus the rank, so dropout differs by process)
    checkpoint_dir: str | Path | None = None  # writes <checkpoint_dir>/last.pt after each epoch
    progress: bool = True  # a tqdm bar (notebook-aware), on the first process only
    num_workers: int | None = None  # DataLoader workers; None lets make_loader choose

    def __post_init__(self):
        whole_number("epochs", self.epochs, minimum=1)
        whole_number("batch_size", self.batch_size, minimum=1)
        whole_number("max_lr_drops", self.max_lr_drops, minimum=0)
        whole_number("plateau_patience", self.plateau_patience, minimum=0)
        whole_number("warmup_epochs", self.warmup_epochs, minimum=0)
        whole_number("seed", self.seed, minimum=0)
        _check_number("lr", self.lr, low=0, low_open=True,
                      hint="the paper's is 0.01; try 0.001 if the loss diverges")
        _check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        _check_number("weight_decay", self.weight_decay, low=0)
        _check_number("lr_factor", self.lr_factor, low=0, high=1, low_open=True, high_open=True,
                      hint="the paper divides by 10: 0.1")
        _check_number("label_smoothing", self.label_smoothing, low=0, high=1, high_open=True)
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.num_workers is not None:
            whole_number("num_workers", self.num_workers, minimum=0)

    @property
    def min_lr(self) -> float:
        """The learning rate after ``max_lr_drops`` drops: the scheduler goes no lower."""
        return self.lr * self.lr_factor**self.max_lr_drops


def _check_number(name, value, *, low=None, high=None, low_open=False, high_open=False,
                  hint=None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = (("(" if low_open else "[") + f"{low if low is not None else '-inf'}, "
                    + f"{high if high is not None else 'inf'}" + (")" if high_open else "]"))
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}"
                         + (f"; {hint}" if hint else ""))


# ---------------------------------------------------------------------------------------------
# What a run records


@dataclass(frozen=True)
class EpochStats:
    """One epoch. Accuracies are fractions in [0, 1] (torchvision's acc@1 and acc@5); the
    paper reports error rates, which are 1 − accuracy."""

    epoch: int  # 1-based: the first epoch is epoch 1
    lr: float  # at the epoch's first step (constant through the epoch except in warm-up)
    train_loss: float  # mean training loss over the epoch (with label smoothing, if set)
    train_top1: float  # training accuracy, measured in train mode (dropout on) as it trains
    val_loss: float  # mean plain cross-entropy on the validation set
    val_top1: float
    val_top5: float | None  # None when there are fewer than 5 classes
    seconds: float  # wall time of the epoch: training and validation
    images_per_second: float  # training images (all processes) per second of training

    @property
    def val_error(self) -> float:
        """Top-1 validation error, the number the learning-rate schedule watches."""
        return 1.0 - self.val_top1

    @property
    def train_error(self) -> float:
        """Top-1 training error, as the paper's Figure 1 plots it."""
        return 1.0 - self.train_top1


# What History.column reads: every field, and the error rates the paper reports.
_COLUMNS = [f.name for f in fields(EpochStats)] + ["train_error", "val_error"]
_TIMING_FIELDS = ("seconds", "images_per_second")


@dataclass
class History:
    """The per-epoch record of a run; ``train`` returns it and every checkpoint holds it."""

    rows: list[EpochStats] = field(default_factory=list)

    def append(self, row: EpochStats) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[EpochStats]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> EpochStats:
        return self.rows[index]

    @property
    def best(self) -> EpochStats | None:
        """The epoch with the highest validation top-1 accuracy (the earliest, on a tie)."""
        return max(self.rows, key=lambda row: row.val_top1, default=None)

    def column(self, name: str) -> list:
        """One field over all epochs, e.g. ``history.column("val_top1")`` for a plot; also
        ``train_error`` and ``val_error`` (1 − top-1)."""
        if name not in _COLUMNS:
            raise ValueError(f"no column {name!r}; the columns are {_COLUMNS}")
        return [getattr(row, name) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, for ``torch.save`` under ``weights_only`` and for JSON."""
        return {"rows": [asdict(row) for row in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls([EpochStats(**row) for row in data["rows"]])

    def __str__(self) -> str:
        header = ["epoch", "lr", "train loss", "train top-1", "val loss", "val top-1",
                  "val top-5", "s", "images/s"]
        cells = [header] + [
            [str(r.epoch), f"{r.lr:.3g}", f"{r.train_loss:.4f}", f"{100 * r.train_top1:.2f}%",
             f"{r.val_loss:.4f}", f"{100 * r.val_top1:.2f}%",
             "" if r.val_top5 is None else f"{100 * r.val_top5:.2f}%", f"{r.seconds:.1f}",
             f"{r.images_per_second:,.0f}"]
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    __repr__ = __str__


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; nothing after the last good epoch was saved."""

    def __init__(self, message: str, *, epoch: int, step: int, loss: float):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


# ---------------------------------------------------------------------------------------------
# Devices, precision, optimizer and schedule


def pick_device() -> torch.device:
    """The fastest device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_amp(amp: str, device: torch.device | str) -> Literal["bf16", "fp16", "off"]:
    """What ``TrainConfig.amp`` means on ``device``.

    ``"auto"`` is bf16 on CUDA that has it natively, fp16 (with a gradient scaler) on older
    CUDA GPUs, and off on MPS and the CPU. Asking for fp16 anywhere but CUDA is an error rather
    than a silent fallback: PyTorch's fp16 autocast and gradient scaler are made for CUDA, and a
    run that quietly trained in another precision would report misleading speeds.
    """
    device = torch.device(device)
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "auto":
        if device.type != "cuda":
            return "off"
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, but training runs on {device}: "
                         "use amp='bf16' or amp='off' (or 'auto', which picks for you)")
    if (amp == "bf16" and device.type == "cuda"
            and not torch.cuda.is_bf16_supported(including_emulation=False)):
        raise ValueError(f"this GPU ({torch.cuda.get_device_name(device)}) has no native bf16: "
                         "use amp='fp16' (with a gradient scaler) or amp='auto'")
    return amp


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """``torch.optim.SGD`` with the paper's momentum and weight decay on every parameter."""
    on_cuda = next(model.parameters()).device.type == "cuda"
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay,
                           fused=True if on_cuda else None)  # one kernel for all parameters


def make_scheduler(optimizer: torch.optim.Optimizer,
                   config: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """Divide the learning rate by 1/lr_factor when the validation error stops improving.

    Step it once per epoch with the top-1 validation error. ``min_lr`` is lr·factor^drops, so
    after ``max_lr_drops`` drops it can go no lower: the paper's "three times".
    """
    min_lr = config.min_lr
    # PyTorch skips a drop smaller than eps (1e-8 by default), which would swallow real drops
    # of a small lr; a thousandth of the floor keeps real drops and ignores rounding at it.
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.plateau_patience,
        min_lr=min_lr, eps=min_lr * 1e-3)


def _make_warmup(optimizer, config: TrainConfig, steps_per_epoch: int):
    """``LinearLR`` from lr/steps up to lr over the warm-up epochs, stepped after every step."""
    steps = config.warmup_epochs * steps_per_epoch
    if steps == 0:
        return None
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / steps,
                                             end_factor=1.0, total_iters=steps)


# ---------------------------------------------------------------------------------------------
# One process or many (torchrun)


@dataclass(frozen=True)
class _Process:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # we started the process group, so we end it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _device_from_config(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return pick_device()
    try:
        return torch.device(config.device)
    except RuntimeError:
        raise ValueError(f"device {config.device!r} is not a device PyTorch knows: use 'auto', "
                         "'cpu', 'cuda', 'cuda:1' or 'mps'") from None


def _start_process(config: TrainConfig) -> _Process:
    """This process's place in the run: torchrun sets WORLD_SIZE, RANK and LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = _device_from_config(config)
    if world_size <= 1:
        return _Process(0, 1, device, owns_group=False)
    if config.device == "auto" and device.type != "cuda":
        device = torch.device("cpu")  # DDP runs on CUDA (NCCL) or the CPU (gloo), not MPS
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"distributed training runs on CUDA or the CPU, not {device}: pass "
                         "device='cuda' or 'cpu'")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Process(dist.get_rank(), dist.get_world_size(), device, owns_group=owns_group)


def _per_process_batch(config: TrainConfig, process: _Process) -> int:
    processes = process.world_size
    if config.batch_size % processes:
        lower = config.batch_size - config.batch_size % processes
        nearest = " or ".join(str(n) for n in (lower, lower + processes) if n > 0)
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch and does not split evenly over "
            f"{processes} processes: use a multiple of {processes}, e.g. {nearest}")
    return config.batch_size // process.world_size


def _sum_over_processes(values: torch.Tensor, process: _Process) -> torch.Tensor:
    if process.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


# ---------------------------------------------------------------------------------------------
# Random states, in forms that torch.load(weights_only=True) accepts


def _mixed_seed(*numbers: int) -> int:
    """One seed for the tuple ``numbers``: (seed, rank) and (seed + 1, rank − 1) get unrelated
    streams, as seed + rank would not."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint32)[0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    np.random.seed(seed)
    random.seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].cpu())


def _rng_states_of_all_processes(process: _Process) -> list[dict[str, Any]]:
    """Every process's random state, by rank, so that a resumed DDP run is exact too."""
    state = _rng_state()
    if not process.distributed:
        return [state]
    gathered: list[Any] = [None] * process.world_size
    dist.all_gather_object(gathered, state)
    return gathered


# ---------------------------------------------------------------------------------------------
# Checkpoints


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by ``train``, read with ``torch.load(weights_only=True)``.

    Keys: ``model``, ``optimizer``, ``scheduler``, ``warmup``, ``scaler`` (state dicts),
    ``epoch`` (epochs completed), ``history`` (``History.to_dict()``), ``config``
    (``TrainConfig`` as a dict), ``rng`` (each process's random states, by rank) and
    ``model_args`` (``AlexNet(**model_args)`` rebuilds the network; None for other models).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: pass the last.pt that an earlier run "
                                "wrote into its checkpoint_dir")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which one
        raise ValueError(f"{path} is not a checkpoint that train() wrote "
                         f"({type(error).__name__}: {error})") from None


def write_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``os.replace`` within one folder is atomic, so a crash mid-write, a full disk or a kill
    leaves the previous file (a checkpoint, a cached run) whole. Used for every file the
    package writes to keep: ``write_atomically(path, functools.partial(torch.save, state))``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _config_as_dict(config: TrainConfig) -> dict[str, Any]:
    values = asdict(config)
    if values["checkpoint_dir"] is not None:
        values["checkpoint_dir"] = str(values["checkpoint_dir"])
    return values


@dataclass
class _State:
    """What training changes, and what a checkpoint saves and restores."""

    module: nn.Module  # the model itself, not its DDP or compiled wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    warmup: torch.optim.lr_scheduler.LinearLR | None
    scaler: torch.amp.GradScaler
    history: History
    epochs_done: int = 0

    def to_checkpoint(self, config: TrainConfig, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "warmup": None if self.warmup is None else self.warmup.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epochs_done,
            "history": self.history.to_dict(),
            "config": _config_as_dict(config),
            "rng": rng,
            # AlexNet(**model_args) rebuilds the network (None for other models).
            "model_args": getattr(self.module, "build_args", None),
        }

    def restore(self, checkpoint: dict[str, Any], path: Path) -> None:
        try:
            self.module.load_state_dict(checkpoint["model"])
        except RuntimeError as error:
            raise ValueError(f"{path} holds the weights of a different network; build the model "
                             f"as the run that wrote it did ({error})") from None
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self._match_buffer_layouts()
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.warmup is not None and checkpoint["warmup"] is not None:
            self.warmup.load_state_dict(checkpoint["warmup"])
        if checkpoint["scaler"]:
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.history = History.from_dict(checkpoint["history"])
        self.epochs_done = checkpoint["epoch"]

    def _match_buffer_layouts(self) -> None:
        """Give each momentum buffer its parameter's memory layout.

        A run saved with channels_last and resumed without (or the reverse) would otherwise
        pair NHWC buffers with NCHW weights, which CUDA's fused SGD refuses.
        """
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                state = self.optimizer.state.get(param, {})
                buffer = state.get("momentum_buffer")
                if buffer is not None and buffer.stride() != param.stride():
                    state["momentum_buffer"] = torch.empty_like(param).copy_(buffer)


# Restored from the checkpoint's optimizer and scheduler, or changing what the data and the loss
# are: a resumed run that changes them is no longer a continuation of the same run.
_RECIPE_FIELDS = ("batch_size", "lr", "momentum", "weight_decay", "lr_factor", "max_lr_drops",
                  "plateau_patience", "warmup_epochs", "label_smoothing", "seed")


def _warn_about_changed_recipe(checkpoint: dict[str, Any], config: TrainConfig, path) -> None:
    saved = checkpoint.get("config", {})
    changed = [f"{name} {saved[name]!r} → {getattr(config, name)!r}" for name in _RECIPE_FIELDS
               if name in saved and saved[name] != getattr(config, name)]
    if changed:
        warnings.warn(f"resuming {path} with a different recipe ({'; '.join(changed)}): the "
                      "learning rate, momentum, weight decay and schedule continue as saved, the "
                      "rest takes the new values", stacklevel=4)


def _restore_rng(checkpoint: dict[str, Any], process: _Process, config: TrainConfig) -> None:
    states = checkpoint["rng"]
    if len(states) == process.world_size:
        _set_rng_state(states[process.rank])
        return
    warnings.warn(f"the checkpoint was written by {len(states)} process(es) and this run has "
                  f"{process.world_size}: the random streams are reseeded, so the run continues "
                  "but will not match an uninterrupted one exactly", stacklevel=3)
    _seed_everything(_mixed_seed(config.seed, process.rank, checkpoint["epoch"]))


# ---------------------------------------------------------------------------------------------
# Epochs


def _loader(dataset: Dataset, batch_size: int, *, train: bool, epoch: int, config: TrainConfig,
            process: _Process):
    from .data import make_loader  # imported here: data.py pulls in torchvision's datasets

    return make_loader(dataset, batch_size, train=train, device=process.device,
                       num_workers=config.num_workers, seed=config.seed, epoch=epoch,
                       distributed=process.distributed)


def _to_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device,
               channels_last: bool):
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = images.to(device, non_blocking=True, memory_format=memory_format)
    return images, labels.to(device, non_blocking=True)


def _autocast(device: torch.device, amp: str):
    if amp == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=_AMP_DTYPES[amp])


def _stop_if_diverged(loss: torch.Tensor, *, epoch: int, step: int, steps: int, lr: float,
                      amp: str, process: _Process, config: TrainConfig) -> None:
    """Raise ``TrainingDiverged`` before a non-finite loss reaches the weights.

    Reading the flag waits for the GPU once a step: the price of stopping at the step itself
    rather than an epoch of NaN weights later.
    """
    bad = (~torch.isfinite(loss.detach())).to(torch.float32).reshape(1)
    if not _sum_over_processes(bad, process).item():  # every process stops at the same step
        return
    kept = _what_was_kept(config)
    value = loss.item()
    became = (f"became {value}" if not math.isfinite(value)
              else "became NaN or infinite in another process")
    raise TrainingDiverged(
        f"the training loss {became} at epoch {epoch}, step {step} of {steps} "
        f"(lr {lr:g}); training stopped without saving, and {kept}. Lower the learning rate "
        "(the paper's 0.01 can diverge on small or unnormalised data) or add warm-up epochs"
        + (", or train in bf16 or fp32 instead of fp16" if amp == "fp16" else ""),
        epoch=epoch, step=step, loss=value)


def _what_was_kept(config: TrainConfig) -> str:
    target = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None
    if target is None:
        return "no checkpoint_dir was set"
    if target.is_file():
        return f"{target} keeps the last good epoch"
    return f"no epoch has finished, so there is no {target}"


def _stop_if_weights_broke(model: nn.Module, val_loss: float, *, epoch: int, steps: int,
                           config: TrainConfig) -> None:
    """Raise ``TrainingDiverged`` before an epoch whose last updates broke the weights (NaN,
    infinite, or too large for a finite validation loss) is scheduled or saved: the loss of
    the step that broke them was still finite."""
    finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
    if finite.item() and math.isfinite(val_loss):
        return
    raise TrainingDiverged(
        f"epoch {epoch}'s last updates broke the network: its weights or its validation loss "
        f"({val_loss}) are NaN or infinite; training stopped without saving epoch {epoch}, and "
        f"{_what_was_kept(config)}. Lower the learning rate or add warm-up epochs",
        epoch=epoch, step=steps, loss=val_loss)


def _train_one_epoch(model, loader, state: _State, criterion, *, epoch: int, config: TrainConfig,
                     amp: str, process: _Process) -> tuple[float, float, int]:
    """Mean loss, accuracy and number of images over all processes."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=process.device)
    correct = torch.zeros((), dtype=torch.float64, device=process.device)
    count, steps = 0, len(loader)
    bar = _progress(loader, epoch=epoch, config=config, process=process)
    for step, (images, labels) in enumerate(bar, start=1):
        images, labels = _to_device(images, labels, process.device, config.channels_last)
        with _autocast(process.device, amp):
            logits = model(images)
            loss = criterion(logits, labels)
        _stop_if_diverged(loss, epoch=epoch, step=step, steps=steps,
                          lr=state.optimizer.param_groups[0]["lr"], amp=amp, process=process,
                          config=config)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if state.warmup is not None and epoch <= config.warmup_epochs:
            state.warmup.step()
        with torch.no_grad():
            loss_sum += loss.detach().double() * labels.numel()
            correct += (logits.argmax(1) == labels).sum()
        count += labels.numel()
        if bar is not loader and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    totals = torch.stack([loss_sum, correct, torch.tensor(count, dtype=torch.float64,
                                                          device=process.device)])
    loss_sum, correct, count = _sum_over_processes(totals, process).tolist()
    return loss_sum / count, correct / count, int(count)


@torch.no_grad()
def _evaluate(model, loader, *, amp: str, process: _Process,
              channels_last: bool) -> tuple[float, float, float | None]:
    """Validation loss, top-1 and top-5 accuracy over all processes.

    Under DDP the sampler pads the validation set to a multiple of the number of processes, so
    a few images may count twice; with one process every image counts once.
    """
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=process.device)  # loss·n, top1, top5, n
    num_classes = None
    for images, labels in loader:
        images, labels = _to_device(images, labels, process.device, channels_last)
        with _autocast(process.device, amp):
            logits = model(images)
        logits = logits.float()
        num_classes = logits.shape[1]
        top5 = top_k_hits(logits, labels, min(5, num_classes))
        totals += torch.stack([
            nn.functional.cross_entropy(logits, labels, reduction="sum").double(),
            top_k_hits(logits, labels, 1).sum().double(), top5.sum().double(),
            torch.tensor(labels.numel(), dtype=torch.float64, device=process.device)])
    loss_sum, top1, top5, count = _sum_over_processes(totals, process).tolist()
    if count == 0:
        raise ValueError("the validation set gave no batches: it is empty")
    return loss_sum / count, top1 / count, (top5 / count if num_classes >= 5 else None)


@dataclass(frozen=True)
class Evaluation:
    """How a trained network does on a dataset, in the paper's terms."""

    top1_error: float
    top5_error: float | None  # None with fewer than five classes
    loss: float  # mean cross-entropy of the prediction (the crops' averaged softmax)
    images: int
    crops: int  # views per image: 1, or 10 for the paper's ten-crop test

    def __str__(self) -> str:
        top5 = "" if self.top5_error is None else f", top-5 error {100 * self.top5_error:.2f}%"
        views = ("one view each" if self.crops == 1
                 else f"{self.crops} crops each, softmax averaged")
        return (f"top-1 error {100 * self.top1_error:.2f}%{top5}, loss {self.loss:.4f}, on "
                f"{self.images:,} images ({views})")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, *, batch_size: int = 128,
             device: str | torch.device = "auto", amp: str = "auto",
             num_workers: int | None = None) -> Evaluation:
    """Top-1 and top-5 error of ``model`` on ``dataset``, as the paper reports them.

    Items are (image, label) with images (C, H, W), or (10, C, H, W) from
    ``alexnet_book.data.ten_crop_val_set``: then the prediction is the softmax averaged over
    the ten crops (Section 4.1). The model is moved to ``device`` and put in ``eval()`` mode.
    """
    batch_size = whole_number("batch_size", batch_size, minimum=1)
    _check_dataset("dataset", dataset)
    # imported here: data.py pulls in torchvision's datasets
    from .data import make_loader, ten_crop_predict

    device = pick_device() if device == "auto" else torch.device(device)
    amp = resolve_amp(amp, device)
    model.to(device).eval()
    loader = make_loader(dataset, batch_size, train=False, device=device,
                         num_workers=num_workers)
    loss_sum, top1, top5, images, crops, classes = 0.0, 0, 0, 0, 1, 0
    for batch, labels in loader:
        crops = batch.shape[1] if batch.dim() == 5 else 1
        views = batch.view(len(labels), crops, *batch.shape[-3:]).to(device)  # (N, crops, ...)
        labels = labels.to(device)
        with _autocast(device, amp):
            probabilities = ten_crop_predict(model, views)  # the softmax averaged over views
        classes = probabilities.shape[-1]
        log_p = probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()
        loss_sum += nn.functional.nll_loss(log_p, labels, reduction="sum").item()
        top1 += int(top_k_hits(log_p, labels, 1).sum())
        top5 += int(top_k_hits(log_p, labels, min(5, classes)).sum())
        images += len(labels)
    return Evaluation(top1_error=1 - top1 / images,
                      top5_error=1 - top5 / images if classes >= 5 else None,
                      loss=loss_sum / images, images=images, crops=crops)


def _progress(loader, *, epoch: int, config: TrainConfig, process: _Process):
    if not (config.progress and process.is_main):
        return loader
    from tqdm.auto import tqdm  # a widget in Jupyter, a text bar in a terminal

    return tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", leave=False)


# ---------------------------------------------------------------------------------------------
# The run


def _prepare_model(model: nn.Module, config: TrainConfig, process: _Process) -> nn.Module:
    """Move the model, wrap it in DDP and compile it; returns what the loop calls."""
    if config.space_to_depth:
        with_space_to_depth_stem(model)  # in place, keeping conv1's parameters and their names
    model.to(process.device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    wrapped = model
    if process.distributed:
        device_ids = [process.device.index] if process.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=device_ids)  # broadcasts rank 0's
    if config.compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def _check_dataset(name: str, dataset) -> None:
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise TypeError(f"{name} must be a map-style Dataset (with __len__ and __getitem__), "
                        f"got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty: it needs at least one (image, label) pair")


def _check_datasets(train_set, val_set) -> None:
    _check_dataset("train_set", train_set)
    _check_dataset("val_set", val_set)


def train(model: nn.Module, train_set: Dataset, val_set: Dataset,
          config: TrainConfig | None = None, *, resume: str | Path | None = None) -> History:
    """Train ``model`` on ``train_set`` as the paper did, validating on ``val_set`` every epoch.

    Returns the ``History`` (the same on every process). Loaders come from
    ``alexnet_book.data.make_loader`` afresh each epoch, shuffled by ``config.seed`` and the
    epoch. With ``config.checkpoint_dir`` set, ``<checkpoint_dir>/last.pt`` is replaced after
    every epoch; ``resume`` takes such a file and continues with the next epoch, up to
    ``config.epochs`` in all. The model is trained in place; under DDP only rank 0 writes.

    Raises ``TrainingDiverged`` (a ``RuntimeError``) when the loss becomes NaN or infinite.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_datasets(train_set, val_set)
    checkpoint = load_checkpoint(resume) if resume is not None else None
    process = _start_process(config)
    try:
        return _run(model, train_set, val_set, config, process, checkpoint, resume)
    finally:
        if process.owns_group:
            dist.destroy_process_group()


def _run(model, train_set, val_set, config: TrainConfig, process: _Process, checkpoint,
         resume) -> History:
    amp = resolve_amp(config.amp, process.device)
    batch = _per_process_batch(config, process)
    if checkpoint is None:
        _seed_everything(_mixed_seed(config.seed, process.rank))
    wrapped = _prepare_model(model, config, process)
    # A loader starts no workers until it is iterated: this one only counts the steps.
    steps_per_epoch = len(_loader(train_set, batch, train=True, epoch=0, config=config,
                                  process=process))
    optimizer = make_optimizer(model, config)
    state = _State(module=model, optimizer=optimizer,
                   scheduler=make_scheduler(optimizer, config),
                   warmup=_make_warmup(optimizer, config, steps_per_epoch),
                   scaler=torch.amp.GradScaler(process.device.type, enabled=amp == "fp16"),
                   history=History())
    if checkpoint is not None:
        _warn_about_changed_recipe(checkpoint, config, resume)
        state.restore(checkpoint, Path(resume))  # the optimizer moves its buffers to the device
        _restore_rng(checkpoint, process, config)  # last: nothing may draw between it and epoch 1
    if state.epochs_done >= config.epochs:
        warnings.warn(f"{resume} has already trained {state.epochs_done} epochs and "
                      f"config.epochs is {config.epochs}: nothing to do; raise epochs to go on",
                      stacklevel=3)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    target = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None

    for epoch_index in range(state.epochs_done, config.epochs):
        epoch = epoch_index + 1
        start = time.perf_counter()
        loader = _loader(train_set, batch, train=True, epoch=epoch_index, config=config,
                         process=process)
        lr = state.optimizer.param_groups[0]["lr"]
        train_loss, train_top1, images = _train_one_epoch(
            wrapped, loader, state, criterion, epoch=epoch, config=config, amp=amp,
            process=process)
        train_seconds = time.perf_counter() - start
        val_loader = _loader(val_set, batch, train=False, epoch=epoch_index, config=config,
                             process=process)
        val_loss, val_top1, val_top5 = _evaluate(wrapped, val_loader, amp=amp, process=process,
                                                 channels_last=config.channels_last)
        _stop_if_weights_broke(model, val_loss, epoch=epoch, steps=len(loader), config=config)
        if epoch > config.warmup_epochs:
            state.scheduler.step(1.0 - val_top1)  # the paper watches the validation error
        state.history.append(EpochStats(
            epoch=epoch, lr=lr, train_loss=train_loss, train_top1=train_top1, val_loss=val_loss,
            val_top1=val_top1, val_top5=val_top5, seconds=time.perf_counter() - start,
            images_per_second=images / train_seconds))
        state.epochs_done = epoch
        if target is not None:
            rng = _rng_states_of_all_processes(process)  # a collective: every process calls it
            if process.is_main:
                write_atomically(target, partial(torch.save, state.to_checkpoint(config, rng)))
        if config.progress and process.is_main:
            _print_epoch(state.history[-1], config)
    return state.history


def _print_epoch(row: EpochStats, config: TrainConfig) -> None:
    from tqdm.auto import tqdm

    top5 = "" if row.val_top5 is None else f", val top-5 {100 * row.val_top5:.2f}%"
    tqdm.write(f"epoch {row.epoch}/{config.epochs}: lr {row.lr:.3g}, train loss "
               f"{row.train_loss:.4f}, train top-1 {100 * row.train_top1:.2f}%, val loss "
               f"{row.val_loss:.4f}, val top-1 {100 * row.val_top1:.2f}%{top5}, "
               f"{row.images_per_second:,.0f} images/s")
