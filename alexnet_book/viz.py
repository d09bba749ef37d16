"""Pictures the chapters draw: the whole network, sliding windows along one row of pixels, what
each layer costs, kernels, feature maps and training curves; and the book's figure style.

matplotlib is imported inside the functions, so ``import alexnet_book`` stays light.
"""

from __future__ import annotations

from torch import nn

from .model import VARIANTS
from .shapes import LayerTable, conv_output_size, layer_table, paper_shape_text

__all__ = ["BOOK_STYLE", "use_book_style", "plot_network", "draw_sliding_windows",
           "plot_layer_costs", "plot_kernels", "plot_history", "plot_feature_maps",
           "plot_receptive_fields"]

_TEXT_GREY = "#333333"
# Okabe and Ito's colour-blind-safe palette without its black, blue first.
_OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442"]

# The book's theme shows a figure on the light page, and in dark mode on a light card
# (--pst-color-text-base) dimmed by a CSS filter. A transparent background lets either show
# through, and dark grey text reads on both (pure black turns harsh under the contrast filter).
BOOK_STYLE = {
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": _TEXT_GREY,
    "axes.labelcolor": _TEXT_GREY,
    "axes.titlecolor": _TEXT_GREY,
    "axes.edgecolor": _TEXT_GREY,
    "xtick.color": _TEXT_GREY,
    "ytick.color": _TEXT_GREY,
    "legend.frameon": False,  # a transparent legend box would let lines show through it
    "figure.dpi": 110,  # the inline backend renders at this: a 10-inch figure is 1100 px wide
}


def use_book_style() -> None:
    """Apply ``BOOK_STYLE`` and a colour-blind-safe colour cycle (Okabe–Ito) to later figures."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(BOOK_STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=_OKABE_ITO)


def plot_network(model_or_variant="paper", ax=None):
    """The whole network, left to right: one block per conv, pooling and fully-connected layer.

    ``model_or_variant`` is a variant name (``"paper"`` or ``"torchvision"``) or a model that
    ``layer_table`` reads; everything drawn comes from its table. Each block shows the layer's
    name and its output as the paper writes it (``55×55×96``); convolutions and pools add their
    kernel and stride. A box's height grows with the side of its maps (square-root scale); a
    fully-connected layer is a narrow bar whose height grows with its width. A layer with
    ``groups=2`` (conv2, conv4, conv5 in the paper) is drawn as two halves: each half of its
    kernels reads only the matching half of the maps below, as on the paper's two GPUs.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if isinstance(model_or_variant, str) and model_or_variant not in VARIANTS:
        raise ValueError(f"no AlexNet variant named {model_or_variant!r}; choose one of "
                         f"{sorted(VARIANTS)} or pass a model")
    if not isinstance(model_or_variant, (str, nn.Module)):
        raise TypeError(f"plot_network takes a variant name, one of {sorted(VARIANTS)}, or a "
                        f"model, got {type(model_or_variant).__name__}")
    table = layer_table(model_or_variant)
    if ax is None:
        figure, ax = plt.subplots(figsize=(10, 3.5))
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fill = {"input": "0.6", "conv": colours[0], "pool": colours[1 % len(colours)],
            "fc": colours[2 % len(colours)]}
    width = {"input": 0.55, "conv": 0.55, "pool": 0.3, "fc": 0.16}
    gap, tallest, split_gap = 0.32, 1.5, 0.06
    top, below = tallest / 2, -tallest / 2  # where the name and the output labels go
    input_side = table.input_shape[1]
    widest_fc = max((row.out_shape[0] for row in table if row.kind == "fc"), default=1)

    blocks = [("input", "input", table.input_shape, None, None, 1)]
    blocks += [(row.name, row.kind, row.out_shape, row.kernel, row.stride, row.groups or 1)
               for row in table]
    x, previous_right = 0.0, None
    for name, kind, shape, kernel, stride, groups in blocks:
        w = width[kind]
        if kind == "fc":
            h = tallest * shape[0] / widest_fc
        else:
            h = max(0.3, tallest * (shape[1] / input_side) ** 0.5)
        part = (h - split_gap * (groups - 1)) / groups  # one box, or one per group
        for g in range(groups):
            ax.add_patch(Rectangle((x, h / 2 - (g + 1) * part - g * split_gap), w, part,
                                   facecolor=fill[kind], edgecolor="none", alpha=0.85))
        centre = x + w / 2
        ax.text(centre, top + 0.1, name, ha="center", va="bottom", fontsize=9,
                fontweight="bold")
        ax.text(centre, below - 0.1, paper_shape_text(shape), ha="center", va="top",
                fontsize=8.5)
        if kernel is not None:
            ax.text(centre, below - 0.35, f"{kernel[0]}×{kernel[1]}\nstride {stride[0]}",
                    ha="center", va="top", fontsize=7.5, linespacing=1.1)
        elif kind == "pool":  # an adaptive pool fixes its output size, not its window
            ax.text(centre, below - 0.35, "adaptive", ha="center", va="top", fontsize=7.5)
        if previous_right is not None:
            ax.annotate("", xy=(x, 0), xytext=(previous_right, 0),
                        arrowprops=dict(arrowstyle="->", lw=0.8,
                                        color=plt.rcParams["text.color"]))
        previous_right, x = x + w, x + w + gap
    bottom = below - 0.9
    if any(groups > 1 for *_, groups in blocks):
        ax.text(0, bottom, "Split boxes: groups=2, each half of the kernels reads only its own "
                "half of the maps below (the paper's two GPUs).", fontsize=8, va="top")
        bottom -= 0.3
    ax.set_xlim(-0.1, previous_right + 0.1)
    ax.set_ylim(bottom, top + 0.4)
    ax.axis("off")
    channels, height, side = table.input_shape
    ax.set_title(f"{table.title}: every layer's output, from a {height}×{side}×{channels} "
                 "input", fontsize=10)
    return ax


def draw_sliding_windows(size: int, kernel: int, stride: int, padding: int = 0, *,
                         rounding: str = "floor", ax=None, title: str | None = None):
    """Draw every position of a ``kernel``-wide window moving ``stride`` pixels along one row.

    Input pixels are grey, padding pixels hatched, each window a bar; pixels that no window
    covers are red, and with ``rounding="ceil"`` the part of the last window that hangs past the
    edge is drawn in orange. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    windows = conv_output_size(size, kernel, stride, padding, rounding=rounding)
    padded = size + 2 * padding
    covered_to = (windows - 1) * stride + kernel  # one past the last padded pixel a window reads
    levels = -(-kernel // stride)  # windows that overlap one another go on separate lines
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.2 + 0.3 * levels))
    for pixel in range(max(padded, covered_to)):
        outside = pixel >= padded
        is_padding = pixel < padding or padding + size <= pixel < padded
        uncovered = pixel >= covered_to
        colour = "tab:red" if uncovered else ("tab:orange" if outside else "0.75")
        ax.add_patch(Rectangle((pixel, -1.0), 1, 0.8, facecolor=colour, edgecolor="white",
                               hatch="///" if is_padding else None, linewidth=0.3))
    for index in range(windows):
        start, y = index * stride, (index % levels) * 0.5
        inside = min(kernel, padded - start)
        ax.add_patch(Rectangle((start, y), inside, 0.4, color="tab:blue", alpha=0.85))
        if inside < kernel:
            ax.add_patch(Rectangle((start + inside, y), kernel - inside, 0.4,
                                   color="tab:orange"))
    last_start = (windows - 1) * stride
    ax.annotate(f"window {windows}", (last_start + kernel / 2, ((windows - 1) % levels) * 0.5 + 0.4),
                xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-1, max(padded, covered_to) + 1)
    ax.set_ylim(-1.2, levels * 0.5 + 0.4)
    ax.set_yticks([])
    ax.set_xlabel("pixel along one row (grey: image, hatched: padding, red: never read, "
                  "orange: past the edge)")
    ax.set_title(title or f"{windows} windows of {kernel} pixels, stride {stride}, over "
                 f"{size} pixels + padding {padding} ({rounding})")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax


def plot_layer_costs(table: LayerTable, *, highlight: str | None = None, axes=None):
    """Two bar charts, parameters and multiply-adds per conv and fc layer, in percent of the
    whole network; ``highlight`` names one layer to draw in a strong colour. Returns the axes.
    """
    import matplotlib.pyplot as plt

    rows = [row for row in table if row.kind in ("conv", "fc")]
    names = [row.name for row in rows]
    if highlight is not None and highlight not in names:
        raise ValueError(f"highlight must name a conv or fc layer, one of {names}; "
                         f"got {highlight!r}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    colours = ["tab:orange" if name == highlight else "tab:blue" for name in names]
    for ax, column, total, label in [
        (axes[0], "params", table.total_params, "share of parameters (%)"),
        (axes[1], "macs", table.total_macs, "share of multiply-adds (%)"),
    ]:
        shares = [100 * getattr(row, column) / total for row in rows]
        ax.barh(names, shares, color=colours)
        ax.set_xlabel(label)
        ax.invert_yaxis()
        for y, share in enumerate(shares):
            ax.text(share, y, f" {share:.1f}", va="center", fontsize=8)
        ax.set_xlim(0, max(shares) * 1.18)
    axes[0].set_title("fully-connected layers store")
    axes[1].set_title("convolutions compute")
    return axes


def plot_kernels(weight, *, groups: int = 1, columns: int | None = None, titles=None,
                 axes=None, normalize: str = "each"):
    """Draw convolution kernels as small images, as the paper's Figure 3 draws conv1's.

    ``weight`` is a conv layer's weight, shape (kernels, channels, k, k), with 3 channels
    (drawn in colour) or 1 (grey). ``groups=2`` splits the kernels into two panels, the first
    half and the second half, as the paper's two GPUs held them. ``normalize="each"`` stretches
    every kernel to the full brightness range; ``"all"`` uses one range for all of them, so
    that weak kernels look weak. Returns the axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    weight = torch.as_tensor(weight).detach().float().cpu()
    if weight.dim() != 4 or weight.shape[1] not in (1, 3):
        raise ValueError("plot_kernels draws kernels of shape (kernels, 1 or 3 channels, k, k), "
                         f"got {tuple(weight.shape)}; pass a first layer's weight, e.g. "
                         "model.conv1.weight")
    if weight.shape[0] % groups:
        raise ValueError(f"{weight.shape[0]} kernels do not split into {groups} equal groups")
    if normalize not in ("each", "all"):
        raise ValueError(f"normalize must be 'each' or 'all', got {normalize!r}")
    dims = (1, 2, 3) if normalize == "each" else (0, 1, 2, 3)
    low = weight.amin(dim=dims, keepdim=True)
    high = weight.amax(dim=dims, keepdim=True)
    images = ((weight - low) / (high - low).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
    per_group = weight.shape[0] // groups
    columns = columns or int(np.ceil(np.sqrt(per_group * 2)))
    rows = int(np.ceil(per_group / columns))
    if axes is None:
        _, axes = plt.subplots(1, groups, figsize=(4.2 * groups, 4.2 * rows / columns + 0.6),
                               squeeze=False)
        axes = axes[0]
    titles = titles or ([f"GPU {g + 1}: kernels {g * per_group + 1}–{(g + 1) * per_group}"
                         for g in range(groups)] if groups > 1 else ["kernels"])
    k = weight.shape[-1]
    for group, ax in enumerate(axes):
        mosaic = np.ones((rows * (k + 1) - 1, columns * (k + 1) - 1, 3))
        for i in range(per_group):
            kernel = images[group * per_group + i]
            r, c = divmod(i, columns)
            mosaic[r * (k + 1): r * (k + 1) + k, c * (k + 1): c * (k + 1) + k] = kernel
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_title(titles[group], fontsize=9)
        ax.axis("off")
    return axes


def _history_rows(history) -> list[dict]:
    import dataclasses

    rows = getattr(history, "rows", history)
    return [dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)
            for row in rows]


def plot_history(histories, *, metrics=("loss", "top1"), axes=None):
    """Training curves per epoch: training and validation ``metrics`` of one or more runs.

    ``histories`` is one training history (``alexnet_book.train.History`` or a list of
    per-epoch dicts) or a dict ``{label: history}`` to compare runs. A metric ``m`` is drawn
    from the columns ``train_m`` and ``val_m`` where they exist. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(histories, dict):
        histories = {"": histories}
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
        axes = axes[0]
    for ax, metric in zip(axes, metrics):
        drawn = False
        for (label, history), colour in zip(histories.items(),
                                            plt.rcParams["axes.prop_cycle"].by_key()["color"]):
            rows = _history_rows(history)
            epochs = [row["epoch"] for row in rows]
            for split, style in (("train", "--"), ("val", "-")):
                column = f"{split}_{metric}"
                if rows and column in rows[0]:
                    name = f"{label} {split}".strip()
                    ax.plot(epochs, [row[column] for row in rows], style, color=colour,
                            label=name)
                    drawn = True
        if not drawn:
            raise ValueError(f"no column train_{metric} or val_{metric} in the history; "
                             f"it has {sorted(_history_rows(next(iter(histories.values())))[0])}")
        ax.set_xlabel("epoch")
        ax.set_ylabel({"top1": "top-1 accuracy", "top5": "top-5 accuracy"}.get(
            metric, metric.replace("_", " ")))
        ax.legend(fontsize=8)
    return axes


def plot_feature_maps(maps, *, count: int = 16, columns: int = 8, image=None, title: str = "",
                      indices=None, axes=None):
    """Draw the first ``count`` feature maps of one image's layer output, (channels, H, W),
    or the maps numbered in ``indices`` (0-based; titled by their number, counting from 1).

    Each map is stretched to its own brightness range (brighter: stronger response); a map that
    is zero everywhere (a ReLU that never fired on this image) stays black. With ``image``
    (channels, H, W) the input is drawn first, for comparison. Returns the axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    maps = torch.as_tensor(maps).detach().float().cpu()
    if maps.dim() == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"maps must be one image's layer output (channels, H, W), got "
                         f"{tuple(maps.shape)}; take outputs[0] of a batch")
    if indices is None:
        indices = range(min(count, maps.shape[0]))
    indices = list(indices)
    if any(not 0 <= i < maps.shape[0] for i in indices):
        raise ValueError(f"indices must lie in 0..{maps.shape[0] - 1}, the layer's maps; "
                         f"got {indices}")
    count = len(indices)
    panels = count + (image is not None)
    rows = int(np.ceil(panels / columns))
    if axes is None:
        _, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.4 * rows + 0.4),
                               squeeze=False)
    axes = np.asarray(axes).ravel()
    panel_axes = iter(axes)
    if image is not None:
        picture = torch.as_tensor(image).detach().float().cpu()
        picture = (picture - picture.min()) / (picture.max() - picture.min()).clamp_min(1e-12)
        ax = next(panel_axes)
        if picture.shape[0] == 1:
            ax.imshow(picture[0].numpy(), cmap="gray")
        else:
            ax.imshow(picture.permute(1, 2, 0).numpy())
        ax.set_title("input", fontsize=8)
    for index in indices:
        ax = next(panel_axes)
        ax.imshow(maps[index].numpy(), cmap="magma",
                  vmin=0 if maps[index].min() >= 0 else None)
        ax.set_title(f"map {index + 1}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes


def plot_receptive_fields(fields, input_size: int, *, highlight: str | None = None, ax=None):
    """Bars of each layer's receptive field in input pixels, against the input's side.

    ``fields`` is ``alexnet_book.shapes.receptive_fields(...)``; conv and pooling layers are
    drawn (a fully-connected layer sees everything). Returns the axes.
    """
    import matplotlib.pyplot as plt

    names = [name for name in fields if not name.startswith("fc")]
    if highlight is not None and highlight not in names:
        raise ValueError(f"highlight must name a conv or pooling layer, one of {names}; "
                         f"got {highlight!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    sizes = [fields[name].size for name in names]
    colours = ["tab:orange" if name == highlight else "tab:blue" for name in names]
    ax.bar(names, sizes, color=colours)
    ax.axhline(input_size, color="grey", linestyle="--", linewidth=1)
    ax.text(len(names) - 0.5, input_size, f"input side: {input_size}", ha="right",
            va="bottom", fontsize=8)
    for x, size in enumerate(sizes):
        ax.text(x, size, str(size), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("receptive field (input pixels)")
    ax.set_ylim(0, max(max(sizes), input_size) * 1.15)
    return ax
