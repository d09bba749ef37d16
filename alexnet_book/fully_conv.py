"""fc6, fc7 and fc8 as convolutions: AlexNet as a fully convolutional network.

fc6 reads the 6×6×256 = 9,216 values that pool5 leaves, through a weight matrix of 4096 × 9,216.
Reshaped to 4096 kernels of 256×6×6, the same numbers are a convolution whose single 6×6 window
covers pool5's whole output; fc7 and fc8 become 1×1 convolutions. On the input size the network
was built for, the convolutional network computes exactly the same scores. On a larger image the
window slides, and the network returns a map of class scores, one for every placement of the
original input window, 32 pixels apart. (Each score is close to, not equal to, the score of
that window cut out alone: where the lone window's padded convolutions saw zeros at its edge, the
sliding one sees the neighbouring pixels.) This is the idea behind OverFeat's sliding-window detector
(Sermanet et al. 2014) and fully convolutional segmentation (Long et al. 2015).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .model import AlexNet

__all__ = ["linear_as_conv", "convolutionalize"]


def linear_as_conv(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    """A convolution with the weights of ``linear``, for inputs of ``in_channels`` maps.

    ``linear`` must read a flattened (in_channels, kernel_size, kernel_size) block, in PyTorch's
    flatten order (channel, then row, then column), as fc6 reads pool5's output.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear_as_conv takes an nn.Linear, got {type(linear).__name__}")
    expected = in_channels * kernel_size * kernel_size
    if linear.in_features != expected:
        raise ValueError(f"the linear layer reads {linear.in_features} values, but "
                         f"{in_channels}×{kernel_size}×{kernel_size} blocks have {expected}")
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size,
                     bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(conv.weight.shape))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv.to(linear.weight.device, linear.weight.dtype)


def convolutionalize(model: AlexNet) -> nn.Sequential:
    """``model`` with fc6–fc8 rewritten as convolutions (6×6, 1×1, 1×1), for evaluation.

    The result takes any image at least as large as the one the model was built for and returns
    scores of shape (N, classes, rows, columns): at the built size, (N, classes, 1, 1), equal
    to the model's output. Dropout is left out (it does nothing in evaluation mode), and so is
    torchvision's adaptive average pool, which would squeeze a larger map back to 6×6.
    """
    if not isinstance(model, AlexNet):
        raise TypeError(f"convolutionalize takes an alexnet_book AlexNet, got {type(model).__name__}")
    conv5_maps = model.conv5.out_channels
    side = round((model.fc6.in_features / conv5_maps) ** 0.5)  # 6 for the built size
    layers = OrderedDict()
    for name, layer in model.named_children():
        if name in ("avgpool", "flatten") or isinstance(layer, nn.Dropout):
            continue
        if name == "fc6":
            layer = linear_as_conv(layer, conv5_maps, side)
        elif isinstance(layer, nn.Linear):
            layer = linear_as_conv(layer, layer.in_features, 1)
        layers[name] = layer
    return nn.Sequential(layers).eval()
