"""Local response normalisation, as the paper writes it (Section 3.3).

    b[i] = a[i] / (k + alpha · Σ_{j = max(0, i − n/2)}^{min(N − 1, i + n/2)} a[j]²) ** beta

Each channel ``i`` at each pixel is divided by a power of the summed squares of its ``n``
neighbouring channels at the same pixel: strong activations dampen their neighbours. The paper
used k = 2, n = 5, alpha = 1e-4, beta = 0.75 after the ReLU of conv1 and conv2.

Three conventions for the same layer are in circulation, and mixing them up is a classic bug:

- the paper's: alpha multiplies the plain sum;
- PyTorch's ``nn.LocalResponseNorm(size, alpha, beta, k)``: alpha multiplies the *mean* over
  ``size`` channels, so the paper's layer is ``nn.LocalResponseNorm(5, alpha=5e-4, ...)``;
- Caffe's reference AlexNet: PyTorch's convention with k = 1 and alpha = 1e-4, which is not
  the paper's layer at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["local_response_norm", "LRNSettings", "LRN_CONVENTIONS", "lrn_layer"]


def _check_lrn_args(x: torch.Tensor, n: int, k: float, alpha: float, beta: float) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"x must have a channel dimension: shape (N, C, ...) such as (N, C, H, W), got "
            f"shape {tuple(x.shape)}; for one image of shape (C, H, W) use x.unsqueeze(0)"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n % 2 == 0:
        raise ValueError(
            f"n must be a positive odd whole number, got {n!r}: the paper's window runs from "
            "i − n/2 to i + n/2, which is symmetric only when n is odd (the paper uses n = 5)"
        )
    if k <= 0 and beta > 0:
        raise ValueError(f"k must be positive so the denominator never reaches 0, got k={k}")
    if alpha < 0:
        raise ValueError(f"alpha must not be negative, got {alpha}")


def local_response_norm(
    x: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> torch.Tensor:
    """The paper's LRN, written as the formula reads (alpha is *not* divided by ``n``).

    ``x`` has shape (N, C, H, W) (any trailing dimensions work). Slow but plain: one channel at
    a time, summing the squares of the channels in its window. Equal to
    ``nn.LocalResponseNorm(n, alpha * n, beta, k)``.
    """
    _check_lrn_args(x, n, k, alpha, beta)
    num_channels = x.shape[1]
    half = n // 2
    squares = x * x
    out = torch.empty_like(x)
    for i in range(num_channels):
        first, last = max(0, i - half), min(num_channels - 1, i + half)
        neighbourhood = squares[:, first : last + 1].sum(dim=1)
        out[:, i] = x[:, i] / (k + alpha * neighbourhood) ** beta
    return out


@dataclass(frozen=True)
class LRNSettings:
    """One way of writing LRN's constants, and what it means in the paper's terms."""

    size: int
    alpha: float  # as written in that convention
    beta: float
    k: float
    alpha_is_divided_by_size: bool  # True for PyTorch and Caffe

    @property
    def paper_alpha(self) -> float:
        """The alpha of the paper's formula that this setting amounts to."""
        return self.alpha / self.size if self.alpha_is_divided_by_size else self.alpha

    def layer(self) -> nn.LocalResponseNorm:
        """PyTorch's layer computing exactly this setting."""
        torch_alpha = self.alpha if self.alpha_is_divided_by_size else self.alpha * self.size
        return nn.LocalResponseNorm(self.size, alpha=torch_alpha, beta=self.beta, k=self.k)


LRN_CONVENTIONS: dict[str, LRNSettings] = {
    # The paper's constants under the paper's formula.
    "paper": LRNSettings(size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_is_divided_by_size=False),
    # The paper's numbers typed straight into nn.LocalResponseNorm: alpha becomes 1e-4 / 5.
    "pytorch": LRNSettings(size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_is_divided_by_size=True),
    # Caffe's reference AlexNet (bvlc_alexnet): k = 1, alpha = 1e-4 under the alpha/n rule.
    "caffe": LRNSettings(size=5, alpha=1e-4, beta=0.75, k=1.0, alpha_is_divided_by_size=True),
}


def lrn_layer(convention: str = "paper") -> nn.LocalResponseNorm:
    """``nn.LocalResponseNorm`` set up as the named convention means it (see ``LRN_CONVENTIONS``)."""
    try:
        return LRN_CONVENTIONS[convention].layer()
    except KeyError:
        raise ValueError(
            f"unknown LRN convention {convention!r}; choose one of {sorted(LRN_CONVENTIONS)}"
        ) from None
