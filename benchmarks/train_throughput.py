"""Training throughput of AlexNet at 227×227, in images per second, on synthetic data.

Times full training steps (forward, cross-entropy, backward, SGD with momentum 0.9 and weight
decay 5e-4, as in the paper) on random images that already sit on the device, so the figure is
the model's speed, not the data loader's. In one run it measures:

- the baseline a user would pick: ``torchvision.models.alexnet()`` in eager fp32, PyTorch's
  default settings;
- ours (``alexnet_book.AlexNet``, both variants) in eager fp32, the same settings;
- ours with every speed feature on: bf16 autocast (fp16 with a gradient scaler where bf16 is
  not supported), channels-last, ``torch.compile``, the fused SGD kernel and conv1 computed
  by space-to-depth, as ``alexnet-book train --amp --channels-last --compile
  --space-to-depth`` trains.

Each is warmed up, then timed ``--repeats`` times over ``--steps`` steps; the median is
reported, with the ratio to the baseline and the model FLOP utilisation (MFU): the FLOPs of one
training step counted by ``torch.utils.flop_counter`` against the device's peak, both the
spec-sheet dense bf16 figure where known and a large matrix product measured in the same run.

    python benchmarks/train_throughput.py                     # on the GPU, batch 256
    python benchmarks/train_throughput.py --device cpu        # on a CPU: batch 8, no compile,
                                                              # under a minute

Prints a Markdown table; ``--json PATH`` also writes the measurements.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, replace

import torch
import torchvision

from alexnet_book import AlexNet
from alexnet_book.speed import (Measurement, Setting, describe_device, device_from, matmul_peak,
                                prepare_step, synchronize, time_step)

IMAGE_SIZE = 227
NUM_CLASSES = 1000

MODELS = {
    "torchvision.models.alexnet": lambda: torchvision.models.alexnet(),
    "ours, paper": lambda: AlexNet("paper"),
    "ours, torchvision variant": lambda: AlexNet("torchvision", init="pytorch",
                                                input_size=IMAGE_SIZE),
    # What the paper variant's two extras cost (--breakdown): each taken out in turn.
    "ours, paper, no LRN": lambda: AlexNet("paper", norm="none"),
    "ours, paper, one group": lambda: AlexNet("paper", groups=1),
    "ours, paper, no LRN, one group": lambda: AlexNet("paper", norm="none", groups=1),
}


EAGER_FP32 = Setting("eager fp32")
# Every speed feature the trainer has: TrainConfig's amp, channels_last, compile and
# space_to_depth (conv1's 3 channels at stride 4 computed as 48 channels at stride 1, the shape
# tensor cores want: alexnet_book.space_to_depth), and the fused SGD kernel it uses on CUDA.
FAST = Setting("bf16 + channels-last + compile + fused SGD + space-to-depth conv1", amp=True,
               channels_last=True, compile_mode="default", fused_sgd=True, space_to_depth=True)

PLAN = [
    ("torchvision.models.alexnet", EAGER_FP32),  # the baseline: first, so ratios refer to it
    ("ours, paper", EAGER_FP32),
    ("ours, torchvision variant", EAGER_FP32),
    ("ours, paper", FAST),
    ("ours, torchvision variant", FAST),
]
BREAKDOWN_MODELS = [name for name in MODELS if name.startswith("ours, paper, ")]
# What the fast rows gain or lose (--breakdown): the whole step replayed as one CUDA graph (the
# CPU no longer issues each kernel; CUDA only, and not in the trainer, which would have to copy
# every batch into fixed input buffers), and the space-to-depth conv1 left out.
FAST_GRAPH = replace(FAST, name=f"{FAST.name} + CUDA graph", cuda_graph=True)
FAST_WITHOUT_STEM = replace(FAST, name=FAST.name.replace(" + space-to-depth conv1", ""),
                            space_to_depth=False)
FAST_VARIATIONS = [(name, setting) for setting in (FAST_GRAPH, FAST_WITHOUT_STEM)
                   for name in ("ours, torchvision variant", "ours, paper")]
BREAKDOWN = FAST_VARIATIONS + [(name, FAST) for name in BREAKDOWN_MODELS]


def _without_compile(setting: Setting) -> Setting:
    return replace(setting, name=setting.name.replace(" + compile", ""), compile_mode=None)


def _with_compile_mode(setting: Setting, mode: str) -> Setting:
    return replace(setting, name=f"{setting.name} ({mode})", compile_mode=mode)


def _prepare_step(model_name: str, setting: Setting, device: torch.device, batch_size: int):
    """One training step of the named model in this setting, as a function, and its FLOPs."""
    torch.manual_seed(0)  # the same initial weights for every setting of a model
    return prepare_step(MODELS[model_name](), setting, device, batch_size, IMAGE_SIZE,
                        NUM_CLASSES)


def _settings_to_run(compiling: bool, modes: list[str], breakdown: bool = False,
                     cuda: bool = True) -> list[tuple[str, Setting]]:
    """The rows of one run, in the order they run, so that a run stopped by a time limit has
    the most telling ones: PLAN (and the breakdown, the fast rows' variations first) in the
    first compile mode, then PLAN's fast rows in each further mode. Without CUDA, no CUDA-graph
    rows."""
    rows = [(name, setting) for name, setting in PLAN + (BREAKDOWN if breakdown else [])
            if cuda or not setting.cuda_graph]
    if not compiling:
        return [(name, _without_compile(setting)) for name, setting in rows]
    first = [(name, setting if setting.compile_mode is None
              else _with_compile_mode(setting, modes[0])) for name, setting in rows]
    further = [(name, _with_compile_mode(setting, mode)) for mode in modes[1:]
               for name, setting in PLAN if setting.compile_mode is not None]
    return first + further


def _only(rows: list[tuple[str, Setting]], patterns: list[str]) -> list[tuple[str, Setting]]:
    """The baseline (the first row) and the rows whose "model: setting" matches one of the
    regular expressions ``patterns``."""
    return rows[:1] + [(name, setting) for name, setting in rows[1:]
                       if any(re.search(pattern, f"{name}: {setting.name}")
                              for pattern in patterns)]


def profile_steps(step, title: str, device: torch.device, steps: int = 5) -> str:
    """The kernels that take the most time over a few more calls of a measured (so already
    warm and compiled) training step, as a text table under ``title``."""
    from torch.profiler import ProfilerActivity, profile

    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=70)
    return f"## {title}, {steps} steps\n{table}"


def markdown_table(rows: list[Measurement]) -> str:
    baseline_name, baseline_setting = PLAN[0]
    baseline = next((r.images_per_second for r in rows
                     if (r.model, r.setting) == (baseline_name, baseline_setting.name)), None)
    if baseline is None:
        raise RuntimeError(f"the baseline ({baseline_name}, {baseline_setting.name}) was not "
                           "measured, so no row can be compared with it; see the log above")
    lines = ["| model | setting | batch | images/s (median) | slowest–fastest | × baseline "
             "| step (ms) | GFLOP/step | MFU (measured peak) | MFU (spec peak) "
             "| first step (s) | memory (GiB) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        spec = f"{100 * r.mfu_spec_peak:.1f}%" if r.mfu_spec_peak is not None else ""
        memory = f"{r.peak_memory_gib:.1f}" if r.peak_memory_gib is not None else ""
        lines.append(
            f"| {r.model} | {r.setting} | {r.batch_size} | {r.images_per_second:,.0f} "
            f"| {r.spread[0]:,.0f}–{r.spread[1]:,.0f} | {r.images_per_second / baseline:.2f} "
            f"| {r.step_ms:.2f} | {r.gflop_per_step:,.0f} | {100 * r.mfu_measured_peak:.1f}% "
            f"| {spec} | {r.first_step_s:.1f} | {memory} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 256 on a GPU, 8 on a CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                        help="torch.compile in the fast rows; auto: on a GPU only, since on a "
                             "CPU compiling takes longer than the whole measurement")
    parser.add_argument("--compile-modes", nargs="+", default=["default"],
                        help="torch.compile modes to try for the fast rows, e.g. default "
                             "max-autotune-no-cudagraphs reduce-overhead (one row each)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the fast rows with the whole step as one CUDA graph "
                             "and without the space-to-depth conv1, and the paper variant with "
                             "every speed feature and without LRN, without groups, and without "
                             "both: what each costs")
    parser.add_argument("--only", nargs="+", metavar="REGEX",
                        help='run only the baseline and the rows whose "model: setting" '
                             "matches one of these regular expressions, e.g. 'CUDA graph'")
    parser.add_argument("--profile", metavar="PATH",
                        help="also profile a few steps of each fast row and write the "
                             "kernels that take the most time to PATH")
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args(argv)

    device = device_from(args.device)
    on_cpu = device.type == "cpu"
    batch_size = args.batch_size or (8 if on_cpu else 256)
    steps = args.steps or (2 if on_cpu else 20)
    warmup = args.warmup if args.warmup is not None else (1 if on_cpu else 5)
    repeats = args.repeats or (2 if on_cpu else 5)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every row: fixed shapes, pick the best kernels
    what, spec_peak = describe_device(device)
    peak = matmul_peak(device)
    print(f"device: {what}; {time.strftime('%Y-%m-%d')}; measured matmul peak "
          f"{peak / 1e12:.1f} TFLOP/s" + (f", spec {spec_peak} TFLOP/s" if spec_peak else ""),
          flush=True)
    compiling = args.compile == "on" or (args.compile == "auto" and not on_cpu)
    rows, profiles = [], []
    plan = _settings_to_run(compiling, args.compile_modes, args.breakdown,
                            cuda=device.type == "cuda")
    if args.only:
        plan = _only(plan, args.only)
    for model_name, setting in plan:
        try:
            step, flops = _prepare_step(model_name, setting, device, batch_size)
            row = time_step(step, flops, model_name, setting, device, batch_size, steps=steps,
                            warmup=warmup, repeats=repeats, peak_flops=peak, spec_peak=spec_peak)
        except Exception as error:  # one compile mode failing must not cost the other rows
            print(f"{model_name:30} {setting.name:44} FAILED: {type(error).__name__}: {error}",
                  flush=True)
            continue
        print(f"{row.model:30} {row.setting:44} {row.images_per_second:10,.0f} images/s",
              flush=True)
        rows.append(row)
        if (args.profile and setting.amp and not setting.cuda_graph
                and model_name not in BREAKDOWN_MODELS):
            title = f"{model_name}, {setting.name}, batch {batch_size}"
            profiles.append(profile_steps(step, title, device))
        # Written after every row, so a run stopped by a time limit keeps what it measured.
        _write_results(args, what, peak, spec_peak, rows, profiles)
    print(markdown_table(rows))


def _write_results(args, what: str, peak: float, spec_peak: float | None,
                   rows: list[Measurement], profiles: list[str]) -> None:
    if args.profile:
        with open(args.profile, "w") as handle:
            handle.write("\n\n".join(profiles))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": what, "date": time.strftime("%Y-%m-%d"),
                       "matmul_peak_tflops": peak / 1e12, "spec_peak_tflops": spec_peak,
                       "measurements": [asdict(r) for r in rows]}, handle, indent=2)


if __name__ == "__main__":
    main()
