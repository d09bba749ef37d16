"""The paper's two-GPU model parallelism (Section 3.2, Figure 2), for real.

Each GPU holds half of the kernels of every layer (a "column"). The columns exchange their
feature maps only where the paper says they communicate: conv3 and the fully-connected layers
read both halves, while conv2, conv4 and conv5 read only their own GPU's half. A single-device
AlexNet with ``groups=2`` in conv2, conv4 and conv5 computes the same function; this module
splits such a network into its two columns on two devices to show it.

One difference is real: the local response normalisation after conv1 and conv2 sums over
neighbouring kernel maps, and a column only has its own. In a column the window stops at the
split, so the two channels on either side of it are normalised over fewer neighbours than in
the single-device network. Everything else is equal.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .model import AlexNet

__all__ = ["TwoColumnAlexNet"]

_CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
_FC_LAYERS = ("fc6", "fc7")


def _half_of_outputs(layer: nn.Module, column: int) -> nn.Module:
    """A copy of ``layer`` keeping the ``column``-th half of its output units (kernels)."""
    half = copy.deepcopy(layer)
    outputs = layer.weight.shape[0] // 2
    keep = slice(column * outputs, (column + 1) * outputs)
    half.weight = nn.Parameter(layer.weight.detach()[keep].clone())
    half.bias = nn.Parameter(layer.bias.detach()[keep].clone())
    if isinstance(layer, nn.Conv2d):
        half.out_channels = outputs
        if layer.groups == 2:  # the grouped layer's column g only reads group g's inputs
            half.in_channels, half.groups = layer.in_channels // 2, 1
    else:
        half.out_features = outputs
    return half


def _followers(model: AlexNet, name: str) -> list[nn.Module]:
    """The layers that come after ``name`` up to the next conv or fc layer (ReLU, LRN, pool)."""
    names = [n for n, _ in model.named_children()]
    follow = []
    for later in names[names.index(name) + 1:]:
        if later.startswith(("conv", "fc")) or later in ("flatten", "avgpool"):
            break
        follow.append(copy.deepcopy(getattr(model, later)))
    return follow


class _Column(nn.Module):
    """One GPU's half of every layer, with the activations, LRN, pooling and dropout after it."""

    def __init__(self, model: AlexNet, column: int):
        super().__init__()
        for name in _CONV_LAYERS + _FC_LAYERS:
            stage = [_half_of_outputs(getattr(model, name), column), *_followers(model, name)]
            self.add_module(name, nn.Sequential(*stage))


class TwoColumnAlexNet(nn.Module):
    """A grouped paper-variant ``AlexNet`` split into the paper's two columns on two devices.

    ``devices`` defaults to two GPUs when there are two, else to the CPU twice (the same
    arithmetic, without the parallelism). The columns copy each other's maps before conv3, fc6
    and fc7, and fc8 runs on the first device, which gathers the second column's half of fc7,
    as in Figure 2. After each forward pass, ``exchanges`` lists where the columns communicated
    and how many values per image crossed between the devices there:
    ``[("conv3", ...), ("fc6", ...), ("fc7", ...), ("fc8", ...)]``.
    """

    def __init__(self, model: AlexNet, devices: tuple[str, str] | None = None):
        super().__init__()
        if not isinstance(model, AlexNet) or model.variant != "paper":
            raise ValueError("TwoColumnAlexNet splits the paper's network: pass AlexNet('paper')")
        if model.conv2.groups != 2:
            raise ValueError(f"the network must be grouped (groups=2) to split into two columns, "
                             f"got groups={model.conv2.groups}")
        if devices is None:
            two_gpus = torch.cuda.is_available() and torch.cuda.device_count() >= 2
            devices = ("cuda:0", "cuda:1") if two_gpus else ("cpu", "cpu")
        self.devices = tuple(torch.device(d) for d in devices)
        self.columns = nn.ModuleList(_Column(model, c).to(d) for c, d in enumerate(self.devices))
        self.fc8 = copy.deepcopy(model.fc8).to(self.devices[0])
        self.input_size = model.input_size
        self.exchanges: list[tuple[str, int]] = []

    def _each(self, name: str, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [getattr(column, name)(x) for column, x in zip(self.columns, inputs)]

    def _exchange(self, halves: list[torch.Tensor], before: str) -> list[torch.Tensor]:
        """Both halves on both devices, concatenated: where the GPUs communicate."""
        # Each column sends its half to the other: all of both halves cross, once per image.
        self.exchanges.append((before, sum(h[0].numel() for h in halves)))
        return [torch.cat([h.to(device) for h in halves], dim=1) for device in self.devices]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.exchanges = []
        halves = self._each("conv1", [x.to(d) for d in self.devices])  # both read the image
        halves = self._each("conv2", halves)  # own half only (groups=2)
        halves = self._each("conv3", self._exchange(halves, "conv3"))  # reads both halves
        halves = self._each("conv4", halves)
        halves = self._each("conv5", halves)
        # Column 0's flattened (C, H, W) maps, then column 1's: the single network's order.
        halves = self._each("fc6", self._exchange([h.flatten(1) for h in halves], "fc6"))
        halves = self._each("fc7", self._exchange(halves, "fc7"))
        return self.fc8(self._gather(halves, "fc8"))

    def _gather(self, halves: list[torch.Tensor], before: str) -> torch.Tensor:
        """Both halves on the first device: only the second column's half crosses."""
        self.exchanges.append((before, halves[1][0].numel()))
        return torch.cat([h.to(self.devices[0]) for h in halves], dim=1)
