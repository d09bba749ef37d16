"""How fast a network trains, in images per second, on whatever device is at hand.

A measurement times full training steps (forward, cross-entropy, backward, SGD with momentum 0.9
and weight decay 5e-4, as in the paper) on random images that already sit on the device, so it
measures the network, not the data loader. ``Setting`` names the speed features to switch on:
mixed precision (bf16 autocast, or fp16 with a gradient scaler where bf16 is missing, as the
trainer chooses), channels-last memory, ``torch.compile``, the fused SGD kernel, conv1 computed
by space-to-depth (``alexnet_book.space_to_depth``) and, on CUDA, the whole step replayed as
one CUDA graph.

    from alexnet_book import AlexNet
    from alexnet_book.speed import Setting, measure_throughput
    measure_throughput(AlexNet, Setting("bf16 + channels-last", amp=True, channels_last=True))

``benchmarks/train_throughput.py`` in the repository runs the project's comparison with it; the
scaling-up chapter runs it on the reader's device.
"""

from __future__ import annotations

import contextlib
import platform
import re
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torchvision
from torch import nn
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from ._checks import whole_number
from .space_to_depth import SpaceToDepthConv2d, with_space_to_depth_stem
from .train import TrainConfig, pick_device, resolve_amp

__all__ = ["Setting", "Measurement", "measure_throughput", "prepare_step", "step_flops", "time_step",
           "matmul_peak", "describe_device", "device_from", "synchronize", "SPEC_PEAK_TFLOPS",
           "spec_peak_tflops", "SpaceToDepthConv2d", "with_space_to_depth_stem",
           "CUDA_GRAPH_WARMUP_STEPS"]

# Dense 16-bit tensor-core peaks from NVIDIA's spec sheets, in TFLOP/s: bf16, except the T4,
# which has no bf16 (its fp16 figure). "H100" and "H200" are the SXM parts.
SPEC_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0,
                    "L40S": 362.1, "L40": 181.0, "L4": 121.0, "T4": 65.0}


def spec_peak_tflops(device_name: str) -> float | None:
    """The spec-sheet peak of the GPU called ``device_name`` (as CUDA names it), or None.

    Names match as whole words, the most specific first, so "NVIDIA L40S" is not an L4 and
    "NVIDIA H100 PCIe" not the SXM part."""
    for key in sorted(SPEC_PEAK_TFLOPS, key=len, reverse=True):
        if re.search(rf"\b{re.escape(key)}\b", device_name):
            return SPEC_PEAK_TFLOPS[key]
    return None


@dataclass(frozen=True)
class Setting:
    """Which speed features a measured training step uses."""

    name: str
    amp: bool = False
    channels_last: bool = False
    compile_mode: str | None = None  # None: eager; else a torch.compile mode such as "default"
    fused_sgd: bool = False  # the fused SGD kernel, on CUDA only
    space_to_depth: bool = False  # conv1 as a stride-1 convolution, see with_space_to_depth_stem
    cuda_graph: bool = False  # the whole step recorded once as a CUDA graph, see _as_cuda_graph


@dataclass
class Measurement:
    model: str
    setting: str
    batch_size: int
    images_per_second: float  # the median over the repeats
    spread: tuple[float, float]  # slowest and fastest repeat, images/s
    step_ms: float
    gflop_per_step: float
    mfu_measured_peak: float | None  # against a matrix product measured in the same run
    mfu_spec_peak: float | None  # against the spec sheet's dense bf16 peak, where known
    first_step_s: float  # includes compiling, when compiling
    peak_memory_gib: float | None  # CUDA only


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock reading means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_from(name: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU, as the trainer does."""
    return pick_device() if name == "auto" else torch.device(name)


def _amp_dtype(device: torch.device) -> torch.dtype:
    """The trainer's choice: bf16 where the device has it, else fp16 with a gradient scaler."""
    return torch.float16 if resolve_amp("auto", device) == "fp16" else torch.bfloat16


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation,
                         transposed, output_padding, groups, output_mask, *, out_shape,
                         **kwargs) -> int:
    """torch.utils.flop_counter's formula for a convolution's backward pass, with the weight
    gradient of a grouped convolution counted once per group, not as if ungrouped.

    PyTorch 2.14's formula leaves ``groups`` out of the weight gradient (pytorch/pytorch#183405)
    and so counts the paper's conv2, conv4 and conv5 weight gradients twice over. Its input
    gradient is right; the weight gradient is counted here, the way it counts it, per group.
    """
    builtin = flop_counter.conv_backward_flop.__wrapped__  # the formula on shapes
    input_only = [output_mask[0], False, *output_mask[2:]]
    flops = builtin(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation,
                    transposed, output_padding, groups, input_only, out_shape=out_shape,
                    **kwargs)
    if output_mask[1]:
        def t(shape):
            return [shape[1], shape[0], *shape[2:]]
        # The weight gradient as a convolution over the batch, as torch's formula writes it.
        inputs, grads = (grad_out_shape, x_shape) if transposed else (x_shape, grad_out_shape)
        as_ungrouped = flop_counter.conv_flop_count(t(inputs), t(grads), t(list(out_shape[1])))
        flops += as_ungrouped // groups
    return flops


def step_flops(model: nn.Module, images, labels) -> int:
    """FLOPs of one forward and backward pass, as torch.utils.flop_counter counts them (with
    its grouped-convolution backward formula corrected)."""
    corrected = {torch.ops.aten.convolution_backward: _conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=corrected) as counter:
        nn.functional.cross_entropy(model(images), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def prepare_step(model: nn.Module, setting: Setting, device: torch.device, batch_size: int,
                 image_size: int, num_classes: int) -> tuple[Callable[[], None], int]:
    """One training step of ``model`` in ``setting`` as a function of no arguments, on a fixed
    random batch, and the FLOPs of its forward and backward pass."""
    if setting.cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got {device.type}; "
                         "leave it False on this device")
    torch.manual_seed(0)
    memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
    model = model.to(device).to(memory_format=memory_format).train()
    in_channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    images = torch.randn(batch_size, in_channels, image_size, image_size, device=device)
    images = images.contiguous(memory_format=memory_format)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    flops = step_flops(model, images, labels)  # the model's own, as MFU counts them
    if setting.space_to_depth:  # after counting: its extra (12/11)² on conv1 is not the model's
        model = with_space_to_depth_stem(model)
    fused = {"fused": True} if setting.fused_sgd and device.type == "cuda" else {}
    recipe = TrainConfig()  # the paper's learning rate, momentum and weight decay
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, **fused)
    scaler = (torch.amp.GradScaler(device.type)
              if setting.amp and _amp_dtype(device) == torch.float16 else None)
    if setting.compile_mode is not None:
        torch._dynamo.reset()  # compile each model afresh, not as a recompile of the last
        model = torch.compile(model, mode=setting.compile_mode)
    # A CUDA graph replays the casts it recorded, so autocast must not cache them across steps.
    autocast = (torch.autocast(device.type, dtype=_amp_dtype(device),
                               cache_enabled=not setting.cuda_graph) if setting.amp
                else contextlib.nullcontext())

    def step():
        with autocast:
            loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    if setting.cuda_graph:
        if scaler is not None:
            raise ValueError("cuda_graph=True cannot record fp16 steps: the gradient scaler "
                             "reads its overflow check on the CPU; use a GPU with bf16")
        return _as_cuda_graph(step, device), flops
    return step, flops


CUDA_GRAPH_WARMUP_STEPS = 2


def _as_cuda_graph(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """``step`` recorded as one CUDA graph (forward, backward and optimizer step, every
    kernel) and replayed with a single launch, so the CPU no longer issues each kernel.

    The first call runs ``CUDA_GRAPH_WARMUP_STEPS`` ordinary steps on a side stream (compiling,
    choosing cuDNN's kernels and making the momentum buffers, none of which a graph may do),
    records the step, then replays it: that call trains for ``CUDA_GRAPH_WARMUP_STEPS + 1``
    steps, each later call for one. This is PyTorch's "whole network capture"
    (https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs); the inputs stay at their
    addresses, as a trainer would keep them by copying each batch into them.
    """
    graph = None

    def replay():
        nonlocal graph
        if graph is None:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(CUDA_GRAPH_WARMUP_STEPS):
                    step()
            torch.cuda.current_stream(device).wait_stream(side)
            recorded = torch.cuda.CUDAGraph()
            with torch.cuda.graph(recorded):
                step()
            graph = recorded
        graph.replay()

    return replay


def time_step(step: Callable[[], None], flops: int, model_name: str, setting: Setting,
              device: torch.device, batch_size: int, *, steps: int, warmup: int, repeats: int,
              peak_flops: float | None = None, spec_peak: float | None = None) -> Measurement:
    """Time a prepared training step: its first call, ``warmup`` more, then ``repeats`` timed
    runs of ``steps`` steps each; the median rate is the figure."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    step()  # includes compilation when compiling
    synchronize(device)
    first_step_s = time.perf_counter() - started
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        rates.append(batch_size * steps / (time.perf_counter() - started))
    rate = statistics.median(rates)
    flops_per_second = flops * rate / batch_size
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Measurement(
        model_name, setting.name, batch_size, rate, (min(rates), max(rates)),
        1000 * batch_size / rate, flops / 1e9,
        flops_per_second / peak_flops if peak_flops else None,
        flops_per_second / (spec_peak * 1e12) if spec_peak else None, first_step_s, peak)


def measure_throughput(make_model: Callable[[], nn.Module], setting: Setting = Setting("fp32"),
                       device: str | torch.device = "auto", *, batch_size: int = 8,
                       image_size: int | None = None, num_classes: int | None = None,
                       steps: int = 2, warmup: int = 1, repeats: int = 3,
                       name: str | None = None) -> Measurement:
    """Images per second of full training steps of a freshly built ``make_model()``.

    ``image_size`` and ``num_classes`` default to the model's own (``AlexNet.input_size`` and
    ``num_classes``; 227 and 1000 for other models). The defaults take a few seconds for the
    full-size network on a CPU; on a GPU use a batch of 128 or more and more steps.
    """
    for label, value, least in [("batch_size", batch_size, 1), ("steps", steps, 1),
                                ("warmup", warmup, 0), ("repeats", repeats, 1)]:
        whole_number(label, value, minimum=least)
    if not isinstance(setting, Setting):
        raise TypeError(f"setting must be an alexnet_book.speed.Setting, got "
                        f"{type(setting).__name__}; e.g. Setting('bf16', amp=True)")
    device = device_from(device)
    model = make_model()
    image_size = image_size or getattr(model, "input_size", 227)
    num_classes = num_classes or getattr(model, "num_classes", 1000)
    step, flops = prepare_step(model, setting, device, batch_size, image_size, num_classes)
    return time_step(step, flops, name or getattr(model, "title", type(model).__name__),
                     setting, device, batch_size, steps=steps, warmup=warmup, repeats=repeats)


def matmul_peak(device: torch.device) -> float:
    """FLOP/s of a large matrix product: bf16 on a GPU, fp32 on a CPU."""
    size, dtype = (8192, torch.bfloat16) if device.type != "cpu" else (1024, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    repeats = 10 if device.type != "cpu" else 3
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def describe_device(device: torch.device) -> tuple[str, float | None]:
    """The device and software in words, and the device's spec-sheet dense bf16 peak in
    TFLOP/s where known."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        spec = spec_peak_tflops(name)
    else:
        name, spec = f"{device.type} ({platform.processor() or platform.machine()}, "\
                     f"{torch.get_num_threads()} threads)", None
    versions = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
                f"Python {platform.python_version()}")
    return f"{name}; {versions}", spec
