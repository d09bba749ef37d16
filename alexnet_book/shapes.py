"""Output-size arithmetic and the per-layer table (the paper's Section 3.5 and Figure 2).

A convolution or pooling window of size ``kernel`` slides over an input of ``size`` pixels,
padded by ``padding`` on each side, in steps of ``stride``. It fits

    (size + 2·padding − kernel) / stride + 1

times. When the division is not exact, something has to give: PyTorch rounds down (the last
partial step is dropped), the 2012 cuda-convnet code and ``ceil_mode=True`` round up. This module
does the arithmetic in the open, and ``layer_table`` walks a model layer by layer with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

from torch import nn

from ._checks import whole_number as _whole

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "map_sides",
    "LayerRow",
    "LayerTable",
    "layer_table",
    "describe_layer",
    "paper_shape_text",
    "ReceptiveField",
    "grow_receptive_field",
    "receptive_fields",
]

Rounding = Literal["exact", "floor", "ceil"]
_ROUNDINGS = ("exact", "floor", "ceil")


def _check_window(size, kernel, stride, padding, rounding) -> tuple[int, int, int, int]:
    size = _whole("size", size, minimum=1)
    kernel = _whole("kernel", kernel, minimum=1)
    stride = _whole("stride", stride, minimum=1)
    padding = _whole("padding", padding, minimum=0)
    if rounding not in _ROUNDINGS:
        raise ValueError(f"rounding must be one of {_ROUNDINGS}, got {rounding!r}")
    if kernel > size + 2 * padding:
        raise ValueError(
            f"kernel {kernel} is larger than the padded input {size} + 2·{padding} = "
            f"{size + 2 * padding}: the window does not fit even once. Use a larger input "
            f"(at least {kernel - 2 * padding}), more padding, or a smaller kernel."
        )
    return size, kernel, stride, padding


def _exact_sizes_near(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """The nearest input sizes below and above ``size`` that the window tiles exactly."""
    span = size + 2 * padding - kernel
    below = size - span % stride
    above = below + stride
    return below, above


def _explain_inexact(what: str, size, kernel, stride, padding) -> str:
    span = size + 2 * padding - kernel
    floor_out = span // stride + 1
    ceil_out = -(-span // stride) + 1
    below, above = _exact_sizes_near(size, kernel, stride, padding)
    lines = [
        f"{what} output size is not a whole number: "
        f"({size} + 2·{padding} − {kernel})/{stride} + 1 = {span}/{stride} + 1 = "
        f"{span / stride + 1:g}. The {kernel}-pixel window moving {stride} at a time does not "
        f"end exactly at the edge of the {size + 2 * padding}-pixel padded input.",
        "Ways out:",
        f"  - feed an input of {above} (or {below}), which the window tiles exactly;",
    ]
    padding_fix = _padding_for_floor(size, kernel, stride, padding, ceil_out)
    if padding_fix is not None:
        famous = (size, kernel, stride, padding) == (224, 11, 4, 0)
        lines.append(
            f"  - pad by {padding_fix} and round down (rounding='floor', PyTorch's rule): "
            f"{ceil_out}{', as torchvision' + chr(39) + 's AlexNet does' if famous else ''};"
        )
    lines += [
        f"  - round up (rounding='ceil', the 2012 cuda-convnet code, ceil_mode=True): {ceil_out};",
        f"  - round down (rounding='floor', what nn.Conv2d/nn.MaxPool2d do): {floor_out}.",
    ]
    if not any(
        (span + 2 * extra) % stride == 0 for extra in range(stride)
    ):
        lines.append(
            f"  No whole padding makes it exact: {size} − {kernel} + 2·padding is always "
            f"{'odd' if span % 2 else 'even'}, and the stride is {stride}."
        )
    return "\n".join(lines)


def _padding_for_floor(size, kernel, stride, padding, target: int) -> int | None:
    """The smallest padding (≥ ``padding``) whose floor-rounded output reaches ``target``."""
    for extra in range(padding, padding + stride + 1):
        if (size + 2 * extra - kernel) // stride + 1 == target:
            return extra
    return None


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, *, rounding: Rounding = "exact"
) -> int:
    """Output size of a convolution along one spatial dimension.

    ``rounding="exact"`` insists that the window tiles the padded input exactly and raises a
    ``ValueError`` that shows the arithmetic and the ways out when it does not (the paper's 224
    into conv1 is the famous case). ``"floor"`` is what ``nn.Conv2d`` does; ``"ceil"`` is what
    the 2012 cuda-convnet code did.

    >>> conv_output_size(227, kernel=11, stride=4)
    55
    >>> conv_output_size(224, kernel=11, stride=4, padding=2, rounding="floor")
    55
    """
    size, kernel, stride, padding = _check_window(size, kernel, stride, padding, rounding)
    span = size + 2 * padding - kernel
    if span % stride and rounding == "exact":
        raise ValueError(_explain_inexact("Convolution", size, kernel, stride, padding))
    if rounding == "ceil":
        return -(-span // stride) + 1
    return span // stride + 1


def pool_output_size(
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    *,
    rounding: Rounding = "exact",
) -> int:
    """Output size of a max- or average-pooling layer along one spatial dimension.

    Same arithmetic as ``conv_output_size``; ``stride`` defaults to ``kernel`` as in
    ``nn.MaxPool2d``. ``rounding="ceil"`` follows ``ceil_mode=True`` exactly, including
    PyTorch's rule that the last window must start inside the input or its left padding.

    >>> pool_output_size(55, kernel=3, stride=2)   # AlexNet's overlapping pooling
    27
    """
    stride = kernel if stride is None else stride
    size, kernel, stride, padding = _check_window(size, kernel, stride, padding, rounding)
    if padding > kernel // 2:
        raise ValueError(
            f"pooling padding must be at most half the kernel ({kernel // 2} for kernel "
            f"{kernel}), got {padding}; PyTorch refuses more because whole windows would "
            "see only padding"
        )
    span = size + 2 * padding - kernel
    if span % stride and rounding == "exact":
        raise ValueError(_explain_inexact("Pooling", size, kernel, stride, padding))
    if rounding != "ceil":
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # last window would start in the right padding
        out -= 1
    return out


def map_sides(model: nn.Module, input_size: int) -> dict[str, int]:
    """The side of the maps after each convolution and max-pooling layer of ``model`` (in
    order, up to the first flatten or adaptive pooling) for ``input_size``×``input_size``
    images, rounded as the layers round (down, or up with ``ceil_mode``).

    Unlike ``layer_table`` it does not stop where fc6 would get the wrong number of inputs, so
    it shows which input sizes give which grid: for the paper's network every side from 227 to
    258 ends in pool5 maps of 6×6. A window that does not fit raises ValueError.
    """
    sides, size = {}, input_size
    for name, layer in model.named_children():
        if isinstance(layer, (nn.Flatten, nn.AdaptiveAvgPool2d)):
            break
        if isinstance(layer, nn.Conv2d):
            size = conv_output_size(size, _pair(layer.kernel_size)[0], _pair(layer.stride)[0],
                                    _pair(layer.padding)[0], rounding="floor")
        elif isinstance(layer, nn.MaxPool2d):
            rounding = "ceil" if layer.ceil_mode else "floor"
            size = pool_output_size(size, _pair(layer.kernel_size)[0], _pair(layer.stride)[0],
                                    _pair(layer.padding)[0], rounding=rounding)
        else:
            continue
        sides[name] = size
    return sides


# --------------------------------------------------------------------------------------------
# The per-layer table
# --------------------------------------------------------------------------------------------

_TABLE_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Linear)


@dataclass(frozen=True)
class LayerRow:
    """One layer of the table: what it is, what it produces, and what it costs."""

    name: str
    kind: str  # "conv", "pool", "fc"
    kernel: tuple[int, int] | None
    stride: tuple[int, int] | None
    padding: tuple[int, int] | None
    groups: int | None
    out_shape: tuple[int, ...]  # per example, without the batch dimension
    params: int
    neurons: int  # output values per example of conv and fc layers; 0 for pooling
    macs: int  # multiply-adds per example

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]


@dataclass
class LayerTable:
    """The rows of ``layer_table``, with totals and a readable rendering in notebooks."""

    rows: list[LayerRow]
    input_shape: tuple[int, int, int]
    title: str = ""
    _by_name: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._by_name = {row.name: row for row in self.rows}

    def __getitem__(self, name: str) -> LayerRow:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no layer named {name!r}; the table has {list(self._by_name)}") from None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def total_neurons(self) -> int:
        return sum(row.neurons for row in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.rows)

    def input_shape_of(self, name: str) -> tuple[int, ...]:
        """What layer ``name`` receives per example: the previous row's output, or the input."""
        index = self.rows.index(self[name])
        return self.input_shape if index == 0 else self.rows[index - 1].out_shape

    def param_share(self, name: str) -> float:
        """The fraction of the network's parameters that layer ``name`` holds."""
        return self[name].params / self.total_params

    def mac_share(self, name: str) -> float:
        """The fraction of the network's multiply-adds per image that layer ``name`` does."""
        return self[name].macs / self.total_macs

    def _cells(self) -> list[list[str]]:
        def pair(p):
            return "" if p is None else (str(p[0]) if p[0] == p[1] else f"{p[0]}×{p[1]}")

        def kernel(row):
            return "" if row.kernel is None else f"{row.kernel[0]}×{row.kernel[1]}"

        body = [
            [
                row.name,
                kernel(row),
                pair(row.stride),
                pair(row.padding),
                "" if row.groups is None else str(row.groups),
                "×".join(str(d) for d in row.out_shape),
                f"{row.params:,}" if row.params else "",
                f"{row.neurons:,}" if row.neurons else "",
                f"{row.macs:,}" if row.macs else "",
            ]
            for row in self.rows
        ]
        total = ["total", "", "", "", "", "", f"{self.total_params:,}",
                 f"{self.total_neurons:,}", f"{self.total_macs:,}"]
        return body + [total]

    _HEADER = ["layer", "kernel", "stride", "pad", "groups", "output (C×H×W)", "params",
               "neurons", "multiply-adds"]

    def __str__(self) -> str:
        cells = [self._HEADER] + self._cells()
        widths = [max(len(r[i]) for r in cells) for i in range(len(self._HEADER))]
        lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                           enumerate(zip(r, widths))) for r in cells]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        heading = f"{self.title}, input {'×'.join(map(str, self.input_shape))}\n"
        return heading + "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self._HEADER)
        rows = self._cells()
        body = "".join(
            "<tr>" + "".join(
                f"<td style='text-align:{'left' if i == 0 else 'right'}'>"
                + (f"<b>{c}</b>" if r is rows[-1] else c) + "</td>"
                for i, c in enumerate(r)
            ) + "</tr>"
            for r in rows
        )
        caption = f"{self.title}, input {'×'.join(map(str, self.input_shape))}"
        return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    __repr__ = __str__


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, Sequence) else (value, value)


def _conv_row(name: str, conv: nn.Conv2d, shape) -> tuple[LayerRow, tuple[int, int, int]]:
    channels, height, width = shape
    if channels != conv.in_channels:
        raise ValueError(f"{name} expects {conv.in_channels} input channels but the layer "
                         f"before produces {channels}")
    kernel, stride, padding = _pair(conv.kernel_size), _pair(conv.stride), _pair(conv.padding)
    if _pair(conv.dilation) != (1, 1) or isinstance(conv.padding, str):
        raise ValueError(f"{name}: layer_table handles plain convolutions (no dilation, "
                         "numeric padding)")
    out_h = conv_output_size(height, kernel[0], stride[0], padding[0], rounding="floor")
    out_w = conv_output_size(width, kernel[1], stride[1], padding[1], rounding="floor")
    out_shape = (conv.out_channels, out_h, out_w)
    weights_per_kernel = (conv.in_channels // conv.groups) * kernel[0] * kernel[1]
    params = conv.out_channels * weights_per_kernel + (conv.out_channels if conv.bias is not None else 0)
    neurons = math.prod(out_shape)
    row = LayerRow(name, "conv", kernel, stride, padding, conv.groups, out_shape, params,
                   neurons, macs=neurons * weights_per_kernel)
    return row, out_shape


def _pool_row(name: str, pool: nn.Module, shape) -> tuple[LayerRow, tuple[int, int, int]]:
    channels, height, width = shape
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        out_hw = _pair(pool.output_size)
        out_shape = (channels, out_hw[0] or height, out_hw[1] or width)
        return LayerRow(name, "pool", None, None, None, None, out_shape, 0, 0, 0), out_shape
    kernel, padding = _pair(pool.kernel_size), _pair(pool.padding)
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    rounding = "ceil" if pool.ceil_mode else "floor"
    out_h = pool_output_size(height, kernel[0], stride[0], padding[0], rounding=rounding)
    out_w = pool_output_size(width, kernel[1], stride[1], padding[1], rounding=rounding)
    out_shape = (channels, out_h, out_w)
    return LayerRow(name, "pool", kernel, stride, padding, None, out_shape, 0, 0, 0), out_shape


def _fc_row(name: str, fc: nn.Linear, shape) -> tuple[LayerRow, tuple[int]]:
    features = math.prod(shape)  # a conv output is flattened on its way into the first fc layer
    if features != fc.in_features:
        raise ValueError(f"{name} expects {fc.in_features} inputs but the layer before "
                         f"produces {'×'.join(map(str, shape))} = {features}")
    params = fc.in_features * fc.out_features + (fc.out_features if fc.bias is not None else 0)
    out_shape = (fc.out_features,)
    row = LayerRow(name, "fc", None, None, None, None, out_shape, params, fc.out_features,
                   macs=fc.in_features * fc.out_features)
    return row, out_shape


def _table_layers(model: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    """The conv, pool and fc layers of ``model`` in the order they were registered."""
    for name, module in model.named_modules():
        if isinstance(module, _TABLE_LAYERS):
            yield name, module


def _resolve_model(model_or_spec) -> nn.Module:
    if isinstance(model_or_spec, nn.Module):
        return model_or_spec
    import torch

    from .model import AlexNet  # imported here: model.py uses this module

    # Only shapes are needed: build on the meta device, allocating and initialising nothing
    # (a full-width network takes most of a second to initialise otherwise).
    if isinstance(model_or_spec, str):
        with torch.device("meta"):
            return AlexNet(model_or_spec)
    if isinstance(model_or_spec, dict):
        with torch.device("meta"):
            return AlexNet(**model_or_spec)
    raise TypeError(
        "layer_table takes an nn.Module, a variant name ('paper' or 'torchvision') or a dict "
        f"of AlexNet options, got {type(model_or_spec).__name__}"
    )


def _input_shape(model: nn.Module, input_size) -> tuple[int, int, int]:
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is None:
        raise ValueError("layer_table needs a model with at least one nn.Conv2d")
    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise ValueError("pass input_size: this model does not say what it expects")
    height, width = _pair(input_size)
    height = _whole("input height", height, minimum=1)
    width = _whole("input width", width, minimum=1)
    return first_conv.in_channels, height, width


def layer_table(model_or_spec="paper", input_size: int | tuple[int, int] | None = None) -> LayerTable:
    """One row per conv, pooling and fully-connected layer, worked out by arithmetic.

    ``model_or_spec`` is a model (an ``AlexNet``, torchvision's ``alexnet()``, or any network of
    conv, pool and linear layers registered in the order they run), a variant name, or a dict of
    ``AlexNet`` options. ``input_size`` defaults to the size the model expects. Shapes follow
    PyTorch's rounding; parameters and multiply-adds are counted from each layer's
    hyper-parameters, not from the tensors, so a test can hold them against ``numel()`` and
    ``torch.utils.flop_counter``.
    """
    model = _resolve_model(model_or_spec)
    shape = _input_shape(model, input_size)
    input_shape, rows = shape, []
    for name, layer in _table_layers(model):
        try:
            if isinstance(layer, nn.Conv2d):
                row, shape = _conv_row(name, layer, shape)
            elif isinstance(layer, nn.Linear):
                row, shape = _fc_row(name, layer, shape)
            else:
                row, shape = _pool_row(name, layer, shape)
        except ValueError as error:
            raise ValueError(f"at layer {name!r} with input {'×'.join(map(str, shape))}: {error}") from None
        rows.append(row)
    title = getattr(model, "title", type(model).__name__)
    return LayerTable(rows, input_shape, title=title)


def paper_shape_text(shape: tuple[int, ...]) -> str:
    """(C, H, W) as the paper writes it, H×W×C; a vector as its length."""
    return f"{shape[1]}×{shape[2]}×{shape[0]}" if len(shape) == 3 else str(shape[0])


def describe_layer(name: str, model_or_spec="paper", input_size: int | None = None) -> dict:
    """Everything a chapter states about one conv or fc layer, computed from the model.

    Keys: ``name``, ``kind``, ``in_shape`` and ``out_shape`` (C, H, W) with ``in_text`` and
    ``out_text`` as the paper writes them (H×W×C), ``kernels``, ``kernel_text`` (one kernel's
    shape, e.g. ``"5×5×48"``), ``groups``, ``stride``, ``padding``, ``params``, ``neurons``,
    ``macs``, ``param_share`` and ``mac_share`` (fractions of the whole network),
    ``receptive_field`` (input pixels one output unit sees along a side) and ``jump`` (input
    pixels between neighbouring units).
    """
    model = _resolve_model(model_or_spec)
    table = layer_table(model, input_size)
    row = table[name]
    if row.kind not in ("conv", "fc"):
        raise ValueError(f"{name} is a {row.kind} layer; describe_layer describes conv and fc "
                         "layers (conv1..conv5, fc6..fc8)")
    in_shape = table.input_shape_of(name)
    field_ = receptive_fields(model, input_size)[name]
    if row.kind == "conv":
        kernel_text = f"{row.kernel[0]}×{row.kernel[1]}×{in_shape[0] // row.groups}"
    else:
        kernel_text = f"{math.prod(in_shape):,}"
    return {
        "name": name, "kind": row.kind,
        "in_shape": in_shape, "out_shape": row.out_shape,
        "in_text": paper_shape_text(in_shape), "out_text": paper_shape_text(row.out_shape),
        "kernels": row.out_channels, "kernel_text": kernel_text,
        "groups": row.groups or 1,
        "stride": row.stride[0] if row.stride else None,
        "padding": row.padding[0] if row.padding else None,
        "params": row.params, "neurons": row.neurons, "macs": row.macs,
        "param_share": table.param_share(name), "mac_share": table.mac_share(name),
        "receptive_field": field_.size, "jump": field_.jump,
    }


# --------------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """The input pixels one output unit of a layer depends on, along one dimension.

    Unit ``i`` sees input pixels ``start + i·jump`` … ``start + i·jump + size − 1``; ``start``
    is negative where padding reaches outside the image.
    """

    size: int
    jump: int  # input pixels between neighbouring units: the product of the strides so far
    start: int

    def pixels(self, unit: int) -> range:
        first = self.start + unit * self.jump
        return range(first, first + self.size)


def grow_receptive_field(below: ReceptiveField, kernel: int, stride: int = 1,
                         padding: int = 0) -> ReceptiveField:
    """The receptive field after one more window of ``kernel`` units moving ``stride`` units.

    The window reads ``kernel`` neighbouring units of the layer below, which sit ``below.jump``
    input pixels apart, so the field widens by ``(kernel − 1) · below.jump``; the new layer's
    units sit ``stride · below.jump`` pixels apart; padding moves the first window's start back
    by ``padding · below.jump`` pixels. conv1 (11, stride 4) on a single pixel gives 11, jump 4.
    """
    if not isinstance(below, ReceptiveField):
        raise TypeError("below must be the ReceptiveField of the layer underneath, got "
                        f"{type(below).__name__}; start from ReceptiveField(size=1, jump=1, "
                        "start=0), a single input pixel")
    kernel = _whole("kernel", kernel, minimum=1)
    stride = _whole("stride", stride, minimum=1)
    padding = _whole("padding", padding, minimum=0)
    if padding >= kernel:
        raise ValueError(f"padding {padding} is not smaller than the kernel {kernel}: the "
                         "outermost windows would read nothing but padding")
    return ReceptiveField(size=below.size + (kernel - 1) * below.jump,
                          jump=below.jump * stride,
                          start=below.start - padding * below.jump)


def receptive_fields(model_or_spec="paper",
                     input_size: int | None = None) -> dict[str, ReceptiveField]:
    """The receptive field of every conv, pooling and fully-connected layer, in input pixels.

    Each window of ``k`` units with stride ``s`` widens the field by ``(k − 1)`` times the jump
    of the layer below, and multiplies the jump by ``s``; padding ``p`` moves the start back by
    ``p`` jumps. A fully-connected layer sees the whole input.
    """
    model = _resolve_model(model_or_spec)
    _, height, _ = _input_shape(model, input_size)
    table = layer_table(model, input_size)
    field_, fields = ReceptiveField(size=1, jump=1, start=0), {}
    for row in table:
        if row.kind == "fc":
            field_ = ReceptiveField(size=height, jump=height, start=0)
        elif row.kernel is None:  # an adaptive pool: only an identity one keeps the geometry
            previous = table.rows[table.rows.index(row) - 1]
            if previous.out_shape != row.out_shape:
                raise ValueError(f"{row.name} resizes {previous.out_shape} to {row.out_shape}: "
                                 "receptive fields after an adaptive pool that changes the size "
                                 "are not whole windows; use the input size it was built for")
        else:
            if row.kernel[0] != row.kernel[1] or row.stride[0] != row.stride[1]:
                raise ValueError(f"{row.name} has a {row.kernel[0]}×{row.kernel[1]} window with "
                                 f"stride {row.stride}: receptive_fields handles square windows")
            field_ = grow_receptive_field(field_, row.kernel[0], row.stride[0], row.padding[0])
        fields[row.name] = field_
    return fields
