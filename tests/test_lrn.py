"""The paper's LRN, written plainly, against PyTorch's nn.LocalResponseNorm and by hand."""

import math

import pytest
import torch
from torch import nn

from alexnet_book.lrn import LRN_CONVENTIONS, local_response_norm, lrn_layer


@pytest.mark.parametrize("n", [1, 3, 5, 7])
@pytest.mark.parametrize("shape", [(2, 9, 4, 4), (1, 3, 5, 5), (3, 16, 2, 3), (2, 6, 7)])
def test_equals_pytorch_with_alpha_times_n(n, shape):
    torch.manual_seed(n)
    x = 20 * torch.randn(shape, dtype=torch.float64)  # large enough that the norm matters
    k, alpha, beta = 2.0, 1e-4, 0.75
    ours = local_response_norm(x, n=n, k=k, alpha=alpha, beta=beta)
    theirs = nn.LocalResponseNorm(n, alpha=alpha * n, beta=beta, k=k)(x)
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, x / k**beta)  # the neighbours really took part


def test_one_pixel_by_hand():
    # Channels a = (1, 2, 3, 4), n = 3, k = 1, alpha = 1, beta = 1: channel 0 sums a0² + a1² = 5,
    # channel 1 sums 1 + 4 + 9 = 14, channel 2 sums 4 + 9 + 16 = 29, channel 3 sums 9 + 16 = 25.
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    out = local_response_norm(x, n=3, k=1.0, alpha=1.0, beta=1.0).flatten()
    expected = torch.tensor([1 / 6, 2 / 15, 3 / 30, 4 / 26])
    torch.testing.assert_close(out, expected)


def test_paper_constants_are_the_defaults():
    x = 10 * torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(
        local_response_norm(x),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(x),  # PAPER_FACTS: the paper's layer
    )


def test_conventions_mean_what_they_say():
    x = 30 * torch.randn(2, 10, 3, 3, dtype=torch.float64)
    paper = local_response_norm(x, n=5, k=2.0, alpha=1e-4, beta=0.75)
    torch.testing.assert_close(lrn_layer("paper")(x), paper)
    # The paper's numbers typed into nn.LocalResponseNorm: alpha is divided by 5.
    torch.testing.assert_close(lrn_layer("pytorch")(x),
                               local_response_norm(x, n=5, k=2.0, alpha=1e-4 / 5, beta=0.75))
    # Caffe's reference AlexNet: k = 1, alpha = 1e-4 / 5 in the paper's terms.
    torch.testing.assert_close(lrn_layer("caffe")(x),
                               local_response_norm(x, n=5, k=1.0, alpha=1e-4 / 5, beta=0.75))
    assert math.isclose(LRN_CONVENTIONS["caffe"].paper_alpha, 2e-5)
    assert not torch.allclose(lrn_layer("pytorch")(x), paper)


@pytest.mark.parametrize(
    "x,kwargs,error,pattern",
    [
        ([1.0, 2.0], {}, TypeError, "must be a torch.Tensor"),
        (torch.ones(5), {}, ValueError, r"x.unsqueeze\(0\)"),
        (torch.ones(1, 4, 2, 2), {"n": 4}, ValueError, "positive odd"),
        (torch.ones(1, 4, 2, 2), {"n": 0}, ValueError, "positive odd"),
        (torch.ones(1, 4, 2, 2), {"k": 0.0}, ValueError, "k must be positive"),
        (torch.ones(1, 4, 2, 2), {"alpha": -1.0}, ValueError, "alpha must not be negative"),
    ],
)
def test_bad_input(x, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        local_response_norm(x, **kwargs)


def test_unknown_convention():
    with pytest.raises(ValueError, match=r"choose one of \['caffe', 'paper', 'pytorch'\]"):
        lrn_layer("tensorflow")
