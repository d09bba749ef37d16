"""Pictures the chapters draw: sliding windows along one row of pixels, and what each layer costs.

matplotlib is imported inside the functions, so ``import alexnet_book`` stays light.
"""

from __future__ import annotations

from .shapes import LayerTable, conv_output_size

__all__ = ["draw_sliding_windows", "plot_layer_costs"]


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
