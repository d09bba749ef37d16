"""conv1 computed by space-to-depth: the same convolution in a shape GPUs compute faster.

AlexNet's first layer reads 3 channels with a stride of 4. Tensor cores multiply in tiles of 8
or 16 channels, so 3 channels leave most of each tile empty. ``SpaceToDepthConv2d`` cuts the
image into 4×4 blocks first, giving 48 channels at a quarter of the side, and computes the same
outputs with a stride-1 convolution over them. On an H200 this made the whole training step
33% faster (``benchmarks/RESULTS.md``); on a CPU it is a few percent slower.

    from alexnet_book import AlexNet
    from alexnet_book.space_to_depth import with_space_to_depth_stem
    model = with_space_to_depth_stem(AlexNet())  # conv1's parameters, names and outputs kept

``TrainConfig(space_to_depth=True)`` and ``alexnet-book train --space-to-depth`` do this for a
training run.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SpaceToDepthConv2d", "with_space_to_depth_stem"]


class SpaceToDepthConv2d(nn.Conv2d):
    """A strided convolution computed as a stride-1 convolution over space-to-depth blocks.

    conv1 reads 3 channels with a stride of 4: a poor shape for tensor cores, which multiply in
    tiles of 8 or 16 channels. Cutting the padded image into 4×4 blocks
    (``F.pixel_unshuffle``) gives 48 channels at a quarter of the side; the 11×11 kernel,
    padded with zeros to 12×12 and cut the same way, becomes a 3×3 kernel over those 48
    channels, and the stride-1 convolution gives the same outputs (Google's TPU entries to
    MLPerf did this for ResNet-50's 7×7, stride-2 first layer). It does (12/11)² ≈ 1.19 times
    conv1's arithmetic.

    The parameters are the ``nn.Conv2d``'s own, with the same names and shapes, so a
    state dict, an optimizer and a checkpoint work with either module.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" \
                or isinstance(self.padding, str) or self.stride[0] != self.stride[1] \
                or self.stride[0] < 2:
            raise ValueError(
                "SpaceToDepthConv2d needs one group, no dilation, zero padding given as "
                f"numbers and the same stride ≥ 2 both ways; got groups={self.groups}, "
                f"dilation={self.dilation}, padding={self.padding!r} "
                f"({self.padding_mode}), stride={self.stride}: use nn.Conv2d for this layer")

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "SpaceToDepthConv2d":
        """The same convolution, sharing ``conv``'s weight and bias (not copies)."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, padding_mode=conv.padding_mode,
                  device="meta")  # no weights of its own to initialise: it takes conv's
        new.weight, new.bias = conv.weight, conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride[0]
        block_kernel = [-(-k // stride) for k in self.kernel_size]  # ceil(k / stride)
        pads = []
        for size, k, p, kb in zip(x.shape[-2:], self.kernel_size, self.padding, block_kernel):
            out = (size + 2 * p - k) // stride + 1
            # After the block kernel slides over (out + kb - 1) blocks it has made `out` outputs;
            # the far side is padded, or cut where its pixels are never read, to that length.
            pads.append((p, stride * (out + kb - 1) - size - p))
        (top, bottom), (left, right) = pads
        blocks = F.pixel_unshuffle(F.pad(x, (left, right, top, bottom)), stride)
        return F.conv2d(blocks, self._block_weight(block_kernel), self.bias)

    def _block_weight(self, block_kernel) -> torch.Tensor:
        stride = self.stride[0]
        (kh, kw), (bh, bw) = self.kernel_size, block_kernel
        weight = F.pad(self.weight, (0, stride * bw - kw, 0, stride * bh - kh))
        out_channels, in_channels = weight.shape[:2]
        # [o, c, by * s + i, bx * s + j] -> [o, c * s * s + i * s + j, by, bx]: pixel_unshuffle's
        # channel order.
        weight = weight.view(out_channels, in_channels, bh, stride, bw, stride)
        return weight.permute(0, 1, 3, 5, 2, 4).reshape(out_channels,
                                                         in_channels * stride * stride, bh, bw)


def with_space_to_depth_stem(model: nn.Module) -> nn.Module:
    """``model`` with its first convolution replaced, in place, by a ``SpaceToDepthConv2d``
    that shares its parameters; for ``AlexNet`` and ``torchvision.models.alexnet`` alike."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, SpaceToDepthConv2d):
                return model  # already computed so
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, SpaceToDepthConv2d.from_conv(child))
                return model
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d to compute by space-to-depth")
