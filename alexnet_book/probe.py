"""Looking inside a network: any layer's output, and the nearest neighbours of feature vectors.

The paper's Figure 4 (right) takes the 4096 values of the last hidden layer (fc7's output after
its ReLU) as a description of an image and shows, for a few test images, the training images
whose descriptions are nearest in Euclidean distance. ``layer_outputs`` gets those values (or
any layer's) and ``nearest_neighbours`` finds the neighbours.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ._checks import whole_number

__all__ = ["layer_outputs", "nearest_neighbours", "neighbour_label_agreement"]


def layer_outputs(model: nn.Sequential, images: torch.Tensor,
                  names: str | Iterable[str]) -> dict[str, torch.Tensor]:
    """Run ``images`` through ``model``'s layers in order and keep the outputs of ``names``.

    The layers run one after another and stop after the last one asked for, so the
    convolutional layers accept an image of any size that fits them (a 227×227 photograph
    through a network trained on 67×67 digits, say): only the fully-connected layers need the
    size the network was built for. Runs in evaluation mode without gradients, and leaves the
    model's mode as it was.
    """
    names = [names] if isinstance(names, str) else list(names)
    layers = dict(model.named_children())
    unknown = [name for name in names if name not in layers]
    if unknown:
        raise ValueError(f"no layer named {unknown}; the model's layers are {list(layers)}")
    if not names:
        raise ValueError("name at least one layer, e.g. 'conv1' or ['conv1', 'relu1']")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a batch (N, C, H, W), got {shape}; "
                         "add the batch dimension of one image with image.unsqueeze(0)")
    wanted, outputs, x = set(names), {}, images
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for name, layer in layers.items():
                try:
                    x = layer(x)
                except RuntimeError as error:
                    raise ValueError(f"{name} cannot take an input of shape {tuple(x.shape)}: "
                                     f"{error}") from None
                if name in wanted:
                    outputs[name] = x
                    if len(outputs) == len(wanted):
                        break
    finally:
        model.train(was_training)
    return {name: outputs[name] for name in names}


def _distances(vectors: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    if vectors.dim() != 2 or queries.dim() != 2 or vectors.shape[1] != queries.shape[1]:
        raise ValueError("vectors and queries must be (count, length) with the same length, got "
                         f"{tuple(vectors.shape)} and {tuple(queries.shape)}; flatten images "
                         "with .flatten(1)")
    return torch.cdist(queries.double(), vectors.double())


def nearest_neighbours(vectors: torch.Tensor, queries: torch.Tensor, k: int = 5, *,
                       exclude_self: bool = False) -> torch.Tensor:
    """Indices (queries, k) of the ``k`` rows of ``vectors`` nearest to each query row.

    Euclidean distance, nearest first. ``exclude_self=True`` is for queries that are the
    vectors themselves (same rows, same order): a vector is not its own neighbour.
    """
    k = whole_number("k", k, minimum=1)
    distances = _distances(vectors, queries)
    if exclude_self:
        if queries.shape != vectors.shape:
            raise ValueError("exclude_self=True needs the queries to be the vectors themselves")
        distances.fill_diagonal_(float("inf"))
    available = vectors.shape[0] - (1 if exclude_self else 0)
    if k > available:
        raise ValueError(f"k={k} neighbours asked for, but only {available} vectors to choose from")
    return distances.topk(k, dim=1, largest=False).indices


def neighbour_label_agreement(vectors: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """How often the ``k`` nearest neighbours of each vector (itself excluded) share its label.

    A measure of how well Euclidean distance on these vectors groups images by class: chance is
    about one over the number of classes, 1.0 means every neighbour has the same label.
    """
    if labels.shape != vectors.shape[:1]:
        raise ValueError(f"one label per vector: {vectors.shape[0]} vectors, labels of shape "
                         f"{tuple(labels.shape)}")
    neighbours = nearest_neighbours(vectors, vectors, k, exclude_self=True)
    return (labels[neighbours] == labels[:, None]).float().mean().item()
