"""Output-size arithmetic, held against PyTorch's own layers and the paper's arithmetic."""

import itertools

import pytest
import torch
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.shapes import conv_output_size, map_sides, pool_output_size

# A grid of small cases, enough to hit every remainder of every stride.
CONV_CASES = [
    (size, kernel, stride, padding)
    for size, kernel, stride, padding in itertools.product(
        range(5, 20), (1, 2, 3, 5), (1, 2, 3, 4), (0, 1, 2)
    )
    if kernel <= size + 2 * padding
]


@pytest.mark.parametrize("size,kernel,stride,padding", CONV_CASES[::7])
def test_floor_matches_conv2d(size, kernel, stride, padding):
    conv = nn.Conv2d(1, 1, kernel_size=kernel, stride=stride, padding=padding)
    real = conv(torch.zeros(1, 1, size, size)).shape[-1]
    assert conv_output_size(size, kernel, stride, padding, rounding="floor") == real


@pytest.mark.parametrize("size,kernel,stride", [(s, k, st) for s in range(5, 30)
                                                for k in (2, 3) for st in (1, 2, 3)][::3])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_matches_maxpool2d_both_roundings(size, kernel, stride, padding, ceil_mode):
    if padding > kernel // 2:
        pytest.skip("PyTorch refuses padding above half the kernel")
    pool = nn.MaxPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    real = pool(torch.zeros(1, 1, size, size)).shape[-1]
    rounding = "ceil" if ceil_mode else "floor"
    assert pool_output_size(size, kernel, stride, padding, rounding=rounding) == real


def test_ceil_pool_drops_a_window_that_would_start_in_the_padding():
    # 6 pixels, kernel 2, stride 4, padding 1: ceil gives 3 windows, but the third would start
    # at padded pixel 8 > 6 + 1, so PyTorch keeps 2.
    real = nn.MaxPool2d(2, stride=4, padding=1, ceil_mode=True)(torch.zeros(1, 1, 6, 6))
    assert pool_output_size(6, 2, 4, 1, rounding="ceil") == real.shape[-1] == 2


def test_alexnet_sizes_from_the_paper():
    # Figure 2: 227 → 55 (conv1) → 27 (pool) → 27 (conv2) → 13 (pool) → 13 → 13 → 13 → 6
    assert conv_output_size(227, 11, 4) == 55
    assert pool_output_size(55, 3, 2) == 27
    assert conv_output_size(27, 5, 1, 2) == 27
    assert pool_output_size(27, 3, 2) == 13
    assert conv_output_size(13, 3, 1, 1) == 13
    assert pool_output_size(13, 3, 2) == 6


def test_the_three_ways_out_of_224():
    # PAPER_FACTS: (224 + 4 − 11)/4 + 1 = 55.25 → 55; 1 + ceil(213/4) = 55; floor of 54.25 is 54
    assert conv_output_size(224, 11, 4, 2, rounding="floor") == 55
    assert conv_output_size(224, 11, 4, rounding="ceil") == 55
    assert conv_output_size(224, 11, 4, rounding="floor") == 54


def test_exact_equals_floor_when_the_window_tiles():
    for size, kernel, stride, padding in CONV_CASES:
        if (size + 2 * padding - kernel) % stride == 0:
            assert conv_output_size(size, kernel, stride, padding) == \
                conv_output_size(size, kernel, stride, padding, rounding="floor")
        else:
            with pytest.raises(ValueError, match="not a whole number"):
                conv_output_size(size, kernel, stride, padding)


def test_224_into_conv1_explains_itself():
    with pytest.raises(ValueError) as caught:
        conv_output_size(224, kernel=11, stride=4)
    message = str(caught.value)
    assert "54.25" in message  # the arithmetic
    assert "227" in message  # the size that fits
    assert "pad by 2" in message and "torchvision" in message  # torchvision's fix
    assert "ceil" in message and "2012" in message  # the cuda-convnet fix
    assert "No whole padding makes it exact" in message  # 213 + 2p is odd


def test_pool_error_names_the_pooling():
    with pytest.raises(ValueError, match=r"Pooling output size .*\(14 \+ 2·0 − 3\)/2"):
        pool_output_size(14, 3, 2)


def test_pool_stride_defaults_to_kernel_like_pytorch():
    assert pool_output_size(8, 2) == nn.MaxPool2d(2)(torch.zeros(1, 1, 8, 8)).shape[-1] == 4


@pytest.mark.parametrize("function", [conv_output_size, pool_output_size])
@pytest.mark.parametrize(
    "args,error,pattern",
    [
        ((-5, 3, 1), ValueError, "size must be at least 1, got -5"),
        ((0, 3, 1), ValueError, "size must be at least 1"),
        ((10, 3, 0), ValueError, "stride must be at least 1, got 0"),
        ((10, 0, 1), ValueError, "kernel must be at least 1"),
        ((10, 3, 1, -1), ValueError, "padding must be at least 0"),
        ((5, 11, 1), ValueError, "kernel 11 is larger than the padded input 5"),
        ((224.5, 11, 4), TypeError, "size must be a whole number, got 224.5"),
        ((227.0, 11, 4), TypeError, r"pass int\(227.0\) = 227"),
        (("224", 11, 4), TypeError, "size must be a whole number"),
        ((True, 1, 1), TypeError, "bool"),
    ],
)
def test_bad_values_get_clear_errors(function, args, error, pattern):
    with pytest.raises(error, match=pattern):
        function(*args)


def test_unknown_rounding_lists_the_choices():
    with pytest.raises(ValueError, match=r"rounding must be one of \('exact', 'floor', 'ceil'\)"):
        conv_output_size(227, 11, 4, rounding="round")


def test_pool_padding_over_half_the_kernel_is_refused_like_pytorch():
    with pytest.raises(RuntimeError):
        nn.MaxPool2d(3, stride=2, padding=2)(torch.zeros(1, 1, 9, 9))
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool_output_size(9, 3, 2, 2, rounding="floor")


def test_numpy_integers_are_accepted():
    numpy = pytest.importorskip("numpy")
    assert conv_output_size(numpy.int64(227), numpy.int32(11), 4) == 55


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
@pytest.mark.parametrize("side", [67, 224, 227, 258, 259])
def test_map_sides_are_the_layers_own(variant, side):
    with torch.device("meta"):
        model = AlexNet(variant)
    sides = map_sides(model, side)
    probe = torch.zeros(1, 3, side, side, device="meta")
    for name, layer in model.named_children():  # PyTorch's own layers, shapes only
        if name not in sides and isinstance(layer, (nn.Flatten, nn.AdaptiveAvgPool2d)):
            break
        probe = layer(probe)
        if name in sides:
            assert sides[name] == probe.shape[-1], (variant, side, name)
    assert list(sides)[-1] == "pool5"


def test_map_sides_of_the_paper_by_hand():
    with torch.device("meta"):
        model = AlexNet("paper")
    # Figure 2: 227 → 55 → 27 → 13 → 6; and 258 is the largest side that still ends in 6.
    assert list(map_sides(model, 227).values()) == [55, 27, 27, 13, 13, 13, 13, 6]
    assert map_sides(model, 258)["pool5"] == 6 and map_sides(model, 259)["pool5"] == 7
    with pytest.raises(ValueError):
        map_sides(model, 10)  # conv1's 11×11 window does not fit
