"""Throughput measurements: what they count, and clear errors for bad arguments.

No speed is asserted (speed is the benchmark's business); these check the arithmetic and the
plumbing on a tiny network.
"""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from alexnet_book import AlexNet
from alexnet_book.shapes import layer_table
from alexnet_book.space_to_depth import SpaceToDepthConv2d, with_space_to_depth_stem
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
    (dict(setting=Setting("graph", cuda_graph=True), device="cpu"), ValueError,
     "cuda_graph=True needs a CUDA device, got cpu"),
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


@pytest.mark.parametrize("kernel, stride, padding, height, width", [
    (11, 4, 0, 227, 227),  # the paper's conv1
    (11, 4, 2, 224, 224),  # torchvision's
    (11, 4, 2, 227, 227),  # torchvision's at 227: its side is not a multiple of the stride
    (11, 4, 0, 250, 241),  # pixels on the far side that conv1 never reads
    (7, 2, 3, 64, 64),  # ResNet's stem
    (3, 2, (1, 0), 33, 35),
])
def test_space_to_depth_computes_the_same_convolution_as_pytorch(kernel, stride, padding,
                                                                 height, width):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, kernel, stride=stride, padding=padding, dtype=torch.double)
    weight, bias = conv.weight, conv.bias
    images = torch.randn(2, 3, height, width, dtype=torch.double, requires_grad=True)
    stem = SpaceToDepthConv2d.from_conv(conv)

    expected = F.conv2d(images, weight, bias, stride=stride, padding=padding)
    got = stem(images)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
    cotangent = torch.randn_like(expected)
    grads = torch.autograd.grad(got, (images, weight, bias), cotangent)
    expected_grads = torch.autograd.grad(expected, (images, weight, bias), cotangent)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("make", [lambda: AlexNet("paper"),
                                  lambda: torchvision.models.alexnet(num_classes=10)])
def test_the_space_to_depth_stem_shares_the_networks_parameters(make):
    torch.manual_seed(0)
    model = make().double().eval()
    images = torch.randn(2, 3, 227, 227, dtype=torch.double)
    before, state = model(images), model.state_dict()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))

    assert with_space_to_depth_stem(model) is model
    stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(stem, SpaceToDepthConv2d)
    assert stem.weight is first_conv.weight and stem.bias is first_conv.bias
    with_space_to_depth_stem(model)  # a second time: conv1 stays, conv2 is not touched
    assert next(m for m in model.modules() if isinstance(m, nn.Conv2d)) is stem
    assert sum(isinstance(m, SpaceToDepthConv2d) for m in model.modules()) == 1
    # The same names and shapes: checkpoints and optimizers work with either.
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    torch.testing.assert_close(model(images), before)
    torch.testing.assert_close(model.to(memory_format=torch.channels_last)(
        images.contiguous(memory_format=torch.channels_last)), before)


def test_space_to_depth_trains_and_counts_the_models_own_flops():
    model = tiny()
    conv1_before = model.conv1.weight.detach().clone()
    stem = measure_throughput(lambda: model, Setting("space-to-depth", space_to_depth=True),
                              "cpu", batch_size=2, steps=1, repeats=1, warmup=0)
    assert isinstance(model.conv1, SpaceToDepthConv2d)
    assert not torch.equal(model.conv1.weight, conv1_before)  # its gradient reached conv1
    plain = measure_throughput(tiny, device="cpu", batch_size=2, steps=1, repeats=1)
    assert stem.gflop_per_step == plain.gflop_per_step  # MFU counts the model's arithmetic


@pytest.mark.parametrize("arguments, pattern", [
    (dict(stride=1), "stride ≥ 2"),
    (dict(stride=4, groups=3), "groups=3"),
    (dict(stride=4, dilation=2), r"dilation=\(2, 2\)"),
    (dict(stride=(4, 2)), r"stride=\(4, 2\)"),
    (dict(stride=4, padding_mode="reflect"), "reflect"),
])
def test_space_to_depth_refuses_what_it_cannot_compute(arguments, pattern):
    with pytest.raises(ValueError, match=f"{pattern}.*use nn.Conv2d"):
        SpaceToDepthConv2d(3, 6, 11, **arguments)
