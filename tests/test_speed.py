"""Throughput measurements: what they count, and clear errors for bad arguments.

No speed is asserted (speed is the benchmark's business); these check the arithmetic and the
plumbing on a tiny network.
"""

import pytest
import torch
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.shapes import layer_table
from alexnet_book.speed import Setting, measure_throughput, spec_peak_tflops, step_flops


def tiny():
    return AlexNet(width=1 / 16, input_size=67, num_classes=10, in_channels=1, init="pytorch")


@pytest.mark.parametrize("groups", [2, 1])
def test_a_measurement_counts_the_flops_of_forward_and_backward(groups):
    def make():
        return AlexNet(width=1 / 16, input_size=67, num_classes=10, in_channels=1,
                       init="pytorch", groups=groups)

    measured = measure_throughput(make, device="cpu", batch_size=4, steps=1, repeats=2)
    table = layer_table(make())  # multiply-adds checked against the paper's table in test_shapes
    # Forward: 2 FLOPs per multiply-add. Backward: the gradients of the weights and of each
    # layer's input, each as costly as the forward pass, except conv1's input gradient, which
    # nobody needs (the images are not trained).
    assert measured.gflop_per_step * 1e9 == 2 * 4 * (3 * table.total_macs - table["conv1"].macs)
    assert measured.batch_size == 4 and measured.setting == "fp32"
    assert measured.images_per_second > 0
    slowest, fastest = measured.spread
    assert slowest <= measured.images_per_second <= fastest
    assert measured.step_ms == pytest.approx(1000 * 4 / measured.images_per_second)
    assert measured.mfu_measured_peak is None and measured.peak_memory_gib is None  # CPU, no peak
    assert measured.model == make().title


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_convolutions_backward_flops_are_counted_per_group(groups):
    # torch.utils.flop_counter (2.14) counts a grouped conv's weight gradient as if ungrouped;
    # the package corrects it. By hand: out 6×6, 8 kernels of 3×3 on 8 / groups maps each.
    conv = nn.Sequential(nn.Conv2d(8, 8, 3, groups=groups, bias=False), nn.Flatten())
    forward = 2 * 2 * (6 * 6) * 8 * (8 // groups) * 3 * 3
    images, labels = torch.randn(2, 8, 8, 8), torch.zeros(2, dtype=torch.long)
    # The images need no gradient: the backward pass is the weight gradient alone.
    assert step_flops(conv, images, labels) == 2 * forward
    assert step_flops(conv, images.requires_grad_(), labels) == 3 * forward


def test_speed_features_run_on_a_cpu():
    setting = Setting("bf16 + channels-last", amp=True, channels_last=True)
    measured = measure_throughput(tiny, setting, "cpu", batch_size=2, steps=1, repeats=1)
    assert measured.setting == "bf16 + channels-last" and measured.images_per_second > 0


def test_a_step_trains_the_model():
    model = tiny()
    before = model.fc8.weight.detach().clone()
    measure_throughput(lambda: model, device="cpu", batch_size=2, steps=1, repeats=1, warmup=0)
    assert not torch.equal(model.fc8.weight, before)  # SGD steps really ran


@pytest.mark.parametrize("arguments,error,pattern", [
    (dict(batch_size=0), ValueError, "batch_size must be at least 1"),
    (dict(steps=1.5), TypeError, "steps must be a whole number"),
    (dict(setting="bf16"), TypeError, r"setting must be an alexnet_book\.speed\.Setting"),
])
def test_bad_arguments_are_explained(arguments, error, pattern):
    with pytest.raises(error, match=pattern):
        measure_throughput(tiny, **arguments)


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.4),  # the SXM part, as CUDA names it
    ("NVIDIA H100 PCIe", 756.0),
    ("NVIDIA H200", 989.4),
    ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA L40S", 362.1),  # not an L4, though the name contains "L4"
    ("NVIDIA L40", 181.0),
    ("NVIDIA L4", 121.0),
    ("Tesla T4", 65.0),
    ("NVIDIA GeForce RTX 4090", None),  # unknown: no MFU against a spec sheet
])
def test_spec_peaks_match_whole_gpu_names(name, peak):
    assert spec_peak_tflops(name) == peak
