"""Training throughput of AlexNet, in images per second, on synthetic data.

Times full training steps (forward, cross-entropy, backward, SGD with momentum and weight decay,
as in the paper) on random images that already sit on the device, so the figure is the model's
speed, not the data loader's. torchvision's own ``alexnet()`` runs in the same process as the
baseline, so figures from different machines are compared through it.

    python benchmarks/train_throughput.py                       # every setting on the GPU
    python benchmarks/train_throughput.py --device cpu --batch-size 16 --steps 3 --warmup 1 \
        --settings fp32                                          # a smoke run on a CPU

Prints a Markdown table and, with ``--json PATH``, writes the measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from dataclasses import asdict, dataclass

import torch
import torchvision
from torch import nn

from alexnet_book import AlexNet

MODELS = {
    "paper": lambda: AlexNet("paper"),
    "torchvision variant": lambda: AlexNet("torchvision", init="pytorch"),
    "torchvision.models.alexnet": lambda: torchvision.models.alexnet(),
}

# name: (autocast dtype or None, channels_last, torch.compile)
SETTINGS = {
    "fp32": (None, False, False),
    "bf16": (torch.bfloat16, False, False),
    "bf16+cl": (torch.bfloat16, True, False),
    "bf16+cl+compile": (torch.bfloat16, True, True),
}


@dataclass
class Measurement:
    model: str
    setting: str
    batch_size: int
    images_per_second: float
    step_ms: float
    compile_s: float | None
    peak_memory_gib: float | None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model_name: str, setting: str, device: torch.device, batch_size: int, steps: int,
            warmup: int) -> Measurement:
    dtype, channels_last, compiled = SETTINGS[setting]
    torch.manual_seed(0)
    model = MODELS[model_name]().to(device)
    input_size = getattr(model, "input_size", 224)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(batch_size, 3, input_size, input_size, device=device)
    images = images.contiguous(memory_format=memory_format)
    labels = torch.randint(0, 1000, (batch_size,), device=device)
    if compiled:
        torch._dynamo.reset()  # each model compiled afresh, not as a recompile of the last
    forward = torch.compile(model) if compiled else model
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())

    def step():
        with autocast:
            loss = nn.functional.cross_entropy(forward(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    step()  # the first step compiles, when compiling
    _synchronize(device)
    first_step_s = time.perf_counter() - started
    for _ in range(warmup):
        step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Measurement(model_name, setting, batch_size, batch_size * steps / elapsed,
                       1000 * elapsed / steps, first_step_s if compiled else None, peak)


def _device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _describe(device: torch.device) -> str:
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return (f"{what or device.type}; torch {torch.__version__}, torchvision "
            f"{torchvision.__version__}, Python {platform.python_version()}")


def _table(rows: list[Measurement]) -> str:
    lines = ["| model | setting | batch | images/s | step (ms) | first step incl. compile (s) "
             "| peak memory (GiB) |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        compile_s = f"{r.compile_s:.1f}" if r.compile_s is not None else ""
        memory = f"{r.peak_memory_gib:.1f}" if r.peak_memory_gib is not None else ""
        lines.append(f"| {r.model} | {r.setting} | {r.batch_size} | {r.images_per_second:,.0f} "
                     f"| {r.step_ms:.2f} | {compile_s} | {memory} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args(argv)

    device = _device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 rows use TF32 tensor cores
        torch.backends.cudnn.allow_tf32 = True
    print(f"device: {_describe(device)}; {time.strftime('%Y-%m-%d')}", flush=True)
    rows = []
    for model_name in args.models:
        for setting in args.settings:
            row = measure(model_name, setting, device, args.batch_size, args.steps, args.warmup)
            print(f"{row.model:28} {row.setting:16} {row.images_per_second:10,.0f} images/s",
                  flush=True)
            rows.append(row)
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": _describe(device), "date": time.strftime("%Y-%m-%d"),
                       "measurements": [asdict(r) for r in rows]}, handle, indent=2)


if __name__ == "__main__":
    main()
