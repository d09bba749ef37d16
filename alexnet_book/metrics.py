"""Top-1 and top-5 error, the paper's two measures (Section 6).

"Top-5 error" is the fraction of test images for which the correct label is not among the five
labels the model considers most probable; top-1 error is the same with one label. Only the
order of the scores matters, so logits, probabilities and softmax averages give the same error.
"""

from __future__ import annotations

import torch

from ._checks import whole_number

__all__ = ["top_k_hits", "top_k_error"]


def _check_scores(scores: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a tensor of shape (images, classes), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != scores.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape ({scores.shape[0]},), one class "
                         f"index per image, got {shape}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1}, the columns of scores; "
                         f"got {labels.min().item()}..{labels.max().item()}")
    if k > scores.shape[1]:
        raise ValueError(f"top-{k} needs at least {k} classes; scores has {scores.shape[1]}")


def top_k_hits(scores: torch.Tensor, labels: torch.Tensor, k: int = 1) -> torch.Tensor:
    """A bool per image: is its label among the ``k`` highest of its scores?"""
    k = whole_number("k", k, minimum=1)
    _check_scores(scores, labels, k)
    best = scores.topk(k, dim=1).indices  # (images, k)
    return (best == labels[:, None]).any(dim=1)


def top_k_error(scores: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """The fraction of images whose label is not among their ``k`` highest scores."""
    hits = top_k_hits(scores, labels, k)
    if hits.numel() == 0:
        raise ValueError("top_k_error needs at least one image")
    return 1.0 - hits.float().mean().item()
