"""AlexNet as one readable module, in the paper's variant and in torchvision's.

- ``variant="paper"``: Krizhevsky, Sutskever and Hinton (2012), Section 3 and Figure 2:
  96-256-384-384-256 kernels, conv2/conv4/conv5 split in two groups (the two GPUs), ReLU then
  local response normalisation after conv1 and conv2, overlapping 3×3 stride-2 max-pooling,
  227×227 inputs, dropout 0.5 on the outputs of fc6 and fc7, and the paper's initialisation.
- ``variant="torchvision"``: ``torchvision.models.alexnet``, which follows Krizhevsky's 2014
  "One weird trick" paper: 64-192-384-256-256 kernels, no groups, no LRN, conv1 padded by 2 so
  that 224×224 works, an adaptive average pool to 6×6, dropout on the inputs of fc6 and fc7.

The layers are named ``conv1`` … ``conv5``, ``fc6`` … ``fc8`` (with ``relu1``, ``norm1``,
``pool1``, … between them), so a chapter can say ``model.conv2`` or hook ``model.fc7``. The
switches let the idea chapters build the same network with one thing changed, and a small
same-shaped network (``width=1/8``, a small ``input_size``) train on a CPU in seconds.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, Mapping

import torch
from torch import nn

from .lrn import LRN_CONVENTIONS, lrn_layer
from .shapes import conv_output_size, pool_output_size

__all__ = ["AlexNet", "VariantSpec", "VARIANTS", "from_torchvision"]


@dataclass(frozen=True)
class VariantSpec:
    """What defines a variant: its layer hyper-parameters and its published counts."""

    title: str
    kernels: tuple[int, int, int, int, int]  # number of kernels (output channels) of conv1..conv5
    kernel_sizes: tuple[int, int, int, int, int]
    strides: tuple[int, int, int, int, int]
    paddings: tuple[int, int, int, int, int]
    groups: int  # for conv2, conv4 and conv5: the layers the paper split across its two GPUs
    hidden: int  # units in fc6 and fc7
    input_size: int
    norm: str  # after the ReLU of conv1 and conv2
    adaptive_pool: int | None  # torchvision pools the last feature map to this size
    dropout_on: Literal["outputs", "inputs"]  # of fc6 and fc7
    init: Literal["paper", "pytorch"]
    published_params: int  # with 1000 classes; from the paper / torchvision
    source: str


VARIANTS: dict[str, VariantSpec] = {
    "paper": VariantSpec(
        title="AlexNet (paper, 2012)",
        kernels=(96, 256, 384, 384, 256),
        kernel_sizes=(11, 5, 3, 3, 3),
        strides=(4, 1, 1, 1, 1),
        paddings=(0, 2, 1, 1, 1),
        groups=2,
        hidden=4096,
        input_size=227,  # the text says 224, but only 227 tiles conv1 exactly
        norm="lrn",
        adaptive_pool=None,
        dropout_on="outputs",
        init="paper",
        published_params=60_965_224,
        source="Krizhevsky, Sutskever, Hinton, NIPS 2012, Section 3.5 and Figure 2",
    ),
    "torchvision": VariantSpec(
        title="AlexNet (torchvision, 'One weird trick' 2014)",
        kernels=(64, 192, 384, 256, 256),
        kernel_sizes=(11, 5, 3, 3, 3),
        strides=(4, 1, 1, 1, 1),
        paddings=(2, 2, 1, 1, 1),
        groups=1,
        hidden=4096,
        input_size=224,
        norm="none",
        adaptive_pool=6,
        dropout_on="inputs",
        init="pytorch",
        published_params=61_100_840,
        source="torchvision.models.alexnet; Krizhevsky 2014, arXiv:1404.5997",
    ),
}

_GROUPED_LAYERS = (2, 4, 5)  # conv2, conv4, conv5 see only their own GPU's half
_BIAS_ONE_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")  # Section 5
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_NORMS = ("lrn", "batchnorm", "none")
_POOLINGS = {"overlapping": (3, 2), "non-overlapping": (2, 2)}


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def _scaled_channels(kernels, width: float, groups: int) -> list[int]:
    """Scale every layer's kernel count, keeping each divisible by the number of groups."""
    scaled = [round(count * width / groups) * groups for count in kernels]
    if 0 in scaled:
        layer = scaled.index(0) + 1
        smallest = max(groups / 2 / count for count in kernels)
        raise ValueError(f"width={width:g} leaves conv{layer} with no kernels "
                         f"({kernels[layer - 1]} × {width:g}, in groups of {groups}, rounds to "
                         f"0); use width > {smallest:.4g}")
    return scaled


class AlexNet(nn.Sequential):
    """AlexNet with named layers; ``AlexNet()`` is the paper's network.

    Keyword options (each defaults to what the variant does):

    - ``num_classes``: outputs of fc8 (1000 for ImageNet).
    - ``in_channels``: 3 for RGB; 1 for grey images.
    - ``input_size``: the square input the network is built for (227 paper, 224 torchvision);
      fc6's width follows from it.
    - ``width``: multiplies every layer's kernel count and the fc6/fc7 units; ``1/8`` gives a
      same-shaped network small enough to train on a CPU.
    - ``groups``: groups of conv2, conv4 and conv5 (2 is the paper's two-GPU split, 1 is none).
    - ``kernels``: the kernel counts of conv1–conv5 at width 1, in place of the variant's (the
      paper's one-GPU comparison net is ``kernels=(48, 128, 192, 192, 256), groups=1``);
      ``width`` scales them like the variant's.
    - ``activation``: ``"relu"`` or ``"tanh"`` (the paper's Figure 1 comparison).
    - ``norm``: after the ReLU of conv1 and conv2: ``"lrn"``, ``"batchnorm"`` or ``"none"``.
    - ``lrn_convention``: ``"paper"`` (the default), ``"pytorch"`` or ``"caffe"`` (see
      ``alexnet_book.lrn``); only with LRN.
    - ``pooling``: ``"overlapping"`` (3×3, stride 2) or ``"non-overlapping"`` (2×2, stride 2).
    - ``dropout``: probability in fc6 and fc7; 0 removes the dropout layers.
    - ``init``: ``"paper"`` (weights N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7),
      ``"pytorch"`` (PyTorch's default) or ``"kaiming"`` (He et al. 2015: weights N(0, 2/fan-in)
      for ReLU, biases 0; what a small network needs to train at the paper's learning rate).
    """

    def __init__(
        self,
        variant: str = "paper",
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: int | None = None,
        width: float = 1.0,
        groups: int | None = None,
        kernels: tuple[int, int, int, int, int] | None = None,
        activation: str = "relu",
        norm: str | None = None,
        lrn_convention: str | None = None,
        pooling: str = "overlapping",
        dropout: float = 0.5,
        init: str | None = None,
    ):
        _choice("variant", variant, VARIANTS)
        spec = VARIANTS[variant]
        norm = spec.norm if norm is None else norm
        groups = spec.groups if groups is None else groups
        input_size = spec.input_size if input_size is None else input_size
        init = spec.init if init is None else init
        if lrn_convention is not None and norm != "lrn":
            raise ValueError(f"lrn_convention={lrn_convention!r} only applies to LRN, but this "
                             f"network has norm={norm!r}; set norm='lrn' or leave "
                             "lrn_convention out")
        lrn_convention = "paper" if lrn_convention is None else lrn_convention
        _check_options(num_classes, in_channels, input_size, width, groups, activation, norm,
                       lrn_convention, pooling, dropout, init)
        kernels = spec.kernels if kernels is None else _checked_kernels(kernels)
        channels = _scaled_channels(kernels, width, groups)
        hidden = max(1, round(spec.hidden * width))
        options = dict(activation=activation, norm=norm, lrn_convention=lrn_convention,
                       pooling=pooling, groups=groups)
        features = _feature_layers(spec, in_channels, channels, **options)
        final_map = _final_map_size(spec, input_size, pooling, variant)
        classifier = _classifier_layers(spec, channels[-1] * final_map**2, hidden, num_classes,
                                        dropout, activation)
        super().__init__(OrderedDict(features + classifier))

        self.variant = variant
        self.title = spec.title if width == 1 else f"{spec.title}, width ×{width:g}"
        self.input_size = input_size
        self.min_input_size = _smallest_input(variant, pooling)  # the smallest that fits
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.options = dict(options, kernels=tuple(kernels), width=width, dropout=dropout,
                            init=init)
        if init == "paper":
            _init_as_in_paper(self)
        elif init == "kaiming":
            _init_kaiming(self, activation)

    @property
    def build_args(self) -> dict:
        """The arguments that build this network again: ``AlexNet(**model.build_args)`` has the
        same layers and parameter shapes (with freshly initialised weights); checkpoints keep
        them so that a trained network can be rebuilt from its file alone."""
        options = dict(self.options)
        if options["norm"] != "lrn":
            del options["lrn_convention"]  # only meaningful, and only accepted, with LRN
        return dict(variant=self.variant, num_classes=self.num_classes,
                    in_channels=self.in_channels, input_size=self.input_size, **options)

    @property
    def expected_input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image."""
        return (self.in_channels, self.input_size, self.input_size)

    def extra_repr(self) -> str:
        channels, height, width = self.expected_input_shape
        return f"variant={self.variant!r}: {self.title}; input {channels}×{height}×{width}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return super().forward(x)

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"AlexNet takes a torch.Tensor, got {type(x).__name__}")
        channels, size, _ = self.expected_input_shape
        if x.dim() == 3 and x.shape[0] == channels:
            raise ValueError(
                f"AlexNet takes a batch of shape (N, {channels}, {size}, {size}); got one image "
                f"of shape {tuple(x.shape)}: add the batch dimension with x.unsqueeze(0)"
            )
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(
                f"AlexNet(variant={self.variant!r}) expects inputs of shape (N, {channels}, "
                f"{size}, {size}), got {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if VARIANTS[self.variant].adaptive_pool is None and (height, width) != (size, size):
            raise ValueError(_wrong_size_message(self, height, width))
        smallest = self.min_input_size
        if VARIANTS[self.variant].adaptive_pool is not None and min(height, width) < smallest:
            raise ValueError(
                f"AlexNet(variant={self.variant!r}) needs inputs of at least "
                f"{smallest}×{smallest}, got {height}×{width}; it was built for {size}×{size}"
            )


def _checked_kernels(kernels) -> tuple[int, ...]:
    counts = tuple(kernels) if isinstance(kernels, (list, tuple)) else ()
    if len(counts) != 5 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                               for c in counts):
        raise ValueError(f"kernels must be five whole numbers ≥ 1, the kernel counts of conv1 "
                         f"to conv5, e.g. (96, 256, 384, 384, 256); got {kernels!r}")
    return counts


def _check_options(num_classes, in_channels, input_size, width, groups, activation, norm,
                   lrn_convention, pooling, dropout, init) -> None:
    for name, value in [("num_classes", num_classes), ("in_channels", in_channels),
                        ("input_size", input_size), ("groups", groups)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if not isinstance(width, (int, float)) or not 0 < width <= 16:
        raise ValueError(f"width must be a number in (0, 16], got {width!r}; use 1/8 for a "
                         "small network that trains on a CPU")
    _choice("activation", activation, _ACTIVATIONS)
    _choice("norm", norm, _NORMS)
    _choice("lrn_convention", lrn_convention, LRN_CONVENTIONS)
    _choice("pooling", pooling, _POOLINGS)
    _choice("init", init, ("paper", "pytorch", "kaiming"))
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout is a probability in [0, 1), got {dropout!r}")


def _conv(spec: VariantSpec, index: int, in_channels: int, out_channels: int, groups: int):
    i = index - 1
    return nn.Conv2d(in_channels, out_channels, kernel_size=spec.kernel_sizes[i],
                     stride=spec.strides[i], padding=spec.paddings[i],
                     groups=groups if index in _GROUPED_LAYERS else 1)


def _norm_layer(norm: str, lrn_convention: str, channels: int) -> list[nn.Module]:
    if norm == "lrn":
        return [lrn_layer(lrn_convention)]
    if norm == "batchnorm":
        return [nn.BatchNorm2d(channels)]
    return []


def _feature_layers(spec, in_channels, channels, *, activation, norm, lrn_convention,
                    pooling, groups) -> list[tuple[str, nn.Module]]:
    # Not in-place: a forward hook on a conv layer must see the conv's output, not its ReLU.
    act = _ACTIVATIONS[activation]
    pool_kernel, pool_stride = _POOLINGS[pooling]
    layers, previous = [], in_channels
    for index, count in enumerate(channels, start=1):
        layers.append((f"conv{index}", _conv(spec, index, previous, count, groups)))
        layers.append((f"{activation}{index}", act()))
        if index in (1, 2):
            layers += [(f"norm{index}", m) for m in _norm_layer(norm, lrn_convention, count)]
        if index in (1, 2, 5):
            layers.append((f"pool{index}", nn.MaxPool2d(pool_kernel, stride=pool_stride)))
        previous = count
    if spec.adaptive_pool is not None:
        layers.append(("avgpool", nn.AdaptiveAvgPool2d((spec.adaptive_pool, spec.adaptive_pool))))
    layers.append(("flatten", nn.Flatten()))
    return layers


def _classifier_layers(spec, in_features, hidden, num_classes, dropout, activation):
    act = _ACTIVATIONS[activation]
    fc6, fc7 = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden)
    drop = (lambda: [nn.Dropout(dropout)]) if dropout > 0 else (lambda: [])
    if spec.dropout_on == "outputs":  # the paper: "the first two fully-connected layers"
        layers = [("fc6", fc6), (f"{activation}6", act()), *[("drop6", d) for d in drop()],
                  ("fc7", fc7), (f"{activation}7", act()), *[("drop7", d) for d in drop()]]
    else:  # torchvision: dropout on the inputs of fc6 and fc7
        layers = [*[("drop6", d) for d in drop()], ("fc6", fc6), (f"{activation}6", act()),
                  *[("drop7", d) for d in drop()], ("fc7", fc7), (f"{activation}7", act())]
    return layers + [("fc8", nn.Linear(hidden, num_classes))]


def _feature_map_size(variant: str, input_size: int, pooling: str) -> int:
    """Side of conv5's pooled output, by PyTorch's floor rounding; raises if a layer won't fit."""
    spec = VARIANTS[variant]
    pool_kernel, pool_stride = _POOLINGS[pooling]
    size = input_size
    for index in range(5):
        size = conv_output_size(size, spec.kernel_sizes[index], spec.strides[index],
                                spec.paddings[index], rounding="floor")
        if index in (0, 1, 4):
            size = pool_output_size(size, pool_kernel, pool_stride, rounding="floor")
    return size


@functools.lru_cache(maxsize=None)
def _smallest_input(variant: str, pooling: str) -> int:
    for size in range(1, 1024):
        try:
            _feature_map_size(variant, size, pooling)
            return size
        except ValueError:
            continue
    raise AssertionError("no input size up to 1024 fits")  # cannot happen for AlexNet


def _final_map_size(spec: VariantSpec, input_size: int, pooling: str, variant: str) -> int:
    try:
        size = _feature_map_size(variant, input_size, pooling)
    except ValueError:
        smallest = _smallest_input(variant, pooling)
        raise ValueError(
            f"input_size {input_size} is too small for AlexNet(variant={variant!r}): a window "
            f"no longer fits before conv5's pooling. The smallest input that works is "
            f"{smallest}×{smallest}."
        ) from None
    return spec.adaptive_pool or size


def _wrong_size_message(model: AlexNet, height: int, width: int) -> str:
    size = model.input_size
    message = (f"AlexNet(variant={model.variant!r}) was built for {size}×{size} inputs, got "
               f"{height}×{width}. fc6's width depends on pool5's size, so the model checks for "
               f"the size it was built for (to catch a wrong crop early): feed {size}×{size} "
               f"crops, or build "
               f"AlexNet({model.variant!r}, input_size={height}).")
    if (height, width) == (224, 224) and model.variant == "paper":
        message += (" The paper's text says 224, but (224 − 11)/4 + 1 = 54.25 does not fit "
                    "conv1: 227 does, torchvision pads conv1 by 2 (variant='torchvision'), and "
                    "the 2012 code rounded up (see alexnet_book.shapes.conv_output_size).")
    return message


def _init_as_in_paper(model: AlexNet) -> None:
    """Section 5: weights from N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0."""
    for name, layer in model.named_children():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, mean=0.0, std=0.01)
            nn.init.constant_(layer.bias, 1.0 if name in _BIAS_ONE_LAYERS else 0.0)


def _init_kaiming(model: AlexNet, activation: str) -> None:
    """He et al. (2015): weights with variance gain²/fan-in keep the signal's scale from layer to
    layer, where the paper's fixed N(0, 0.01) shrinks it in a narrow network; biases 0."""
    for layer in model.children():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity=activation)
            nn.init.zeros_(layer.bias)


# torchvision's module paths for the layers that hold weights, by our names.
_TORCHVISION_PATHS = {
    "conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
    "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6",
}


def from_torchvision(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> AlexNet:
    """A ``variant="torchvision"`` AlexNet holding the weights of torchvision's ``alexnet``.

    Takes the torchvision model or its ``state_dict`` (for example pretrained weights loaded
    with ``AlexNet_Weights.IMAGENET1K_V1.get_state_dict()`` when online).
    """
    if isinstance(model_or_state_dict, nn.Module):
        state = model_or_state_dict.state_dict()
    elif isinstance(model_or_state_dict, Mapping):
        state = dict(model_or_state_dict)
    else:
        raise TypeError("from_torchvision takes torchvision's AlexNet or its state_dict, got "
                        f"{type(model_or_state_dict).__name__}")
    expected = {f"{path}.{kind}" for path in _TORCHVISION_PATHS.values()
                for kind in ("weight", "bias")}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            "this is not a torchvision AlexNet state_dict: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {unexpected}" if unexpected else "")
        )
    net = AlexNet("torchvision", num_classes=state["classifier.6.weight"].shape[0],
                  in_channels=state["features.0.weight"].shape[1], init="pytorch")
    renamed = {f"{ours}.{kind}": state[f"{theirs}.{kind}"]
               for ours, theirs in _TORCHVISION_PATHS.items() for kind in ("weight", "bias")}
    try:
        net.load_state_dict(renamed)
    except RuntimeError as error:
        raise ValueError(f"the weights do not have torchvision AlexNet's shapes: {error}") from None
    return net
