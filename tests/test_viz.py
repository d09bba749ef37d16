"""The pictures: what they draw is what the arithmetic says."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from alexnet_book import layer_table  # noqa: E402
from alexnet_book.viz import (draw_sliding_windows, plot_history, plot_kernels,  # noqa: E402
                              plot_layer_costs)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _window_bars(ax, colour=(0.12156862745098039, 0.4666666666666667, 0.7058823529411765)):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_y() >= 0
            and p.get_facecolor()[:3] == pytest.approx(colour)]


@pytest.mark.parametrize("size,kernel,stride,padding", [(13, 3, 2, 0), (227, 11, 4, 0),
                                                         (224, 11, 4, 2)])
def test_one_bar_per_window(size, kernel, stride, padding):
    ax = draw_sliding_windows(size, kernel, stride, padding)
    # (size + 2·padding − kernel) // stride + 1 windows, by hand: 6, 55, 55
    assert len(_window_bars(ax)) == (size + 2 * padding - kernel) // stride + 1


def test_unread_pixel_is_marked_red():
    ax = draw_sliding_windows(224, 11, 4)  # 213 = 4·53 + 1: one pixel left over
    red = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0.8392, 0.1529, 0.1569), abs=1e-3)]
    assert len(red) == 1 and red[0].get_x() == 223


def test_layer_costs_highlight_and_errors():
    axes = plot_layer_costs(layer_table("paper"), highlight="fc6")
    assert [t.get_text() for t in axes[0].get_yticklabels()][5] == "fc6"
    with pytest.raises(ValueError, match="highlight must name a conv or fc layer"):
        plot_layer_costs(layer_table("paper"), highlight="pool1")


def test_kernels_mosaic_places_each_kernel():
    weight = torch.zeros(4, 3, 5, 5)
    weight[2, :, 1, 3] = 1.0  # kernel 3 has one bright pixel at row 1, column 3
    weight[2, :, 0, 0] = -1.0
    axes = plot_kernels(weight, groups=2, columns=2)
    assert len(axes) == 2 and axes[1].get_title().startswith("GPU 2")
    mosaic = axes[1].images[0].get_array()  # second group holds kernels 3 and 4
    assert mosaic[1, 3].tolist() == [1.0, 1.0, 1.0] and mosaic[0, 0].tolist() == [0.0, 0.0, 0.0]


def test_kernels_bad_input():
    with pytest.raises(ValueError, match="model.conv1.weight"):
        plot_kernels(torch.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        plot_kernels(torch.zeros(4, 3, 3, 3), groups=3)


def test_history_curves():
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.5 / e,
                "train_top1": 0.5 / e, "val_top1": 0.6 / e} for e in (1, 2, 3)]
    axes = plot_history({"relu": history, "tanh": history})
    assert len(axes) == 2 and len(axes[0].lines) == 4
    assert axes[0].lines[1].get_ydata().tolist() == [2.5, 1.25, 2.5 / 3]
    with pytest.raises(ValueError, match="no column train_accuracy"):
        plot_history(history, metrics=("accuracy",))


def test_feature_maps_draw_each_map_and_the_input():
    from alexnet_book.viz import plot_feature_maps

    maps = torch.rand(20, 9, 9)
    axes = plot_feature_maps(maps, count=5, columns=4, image=torch.rand(1, 33, 33), title="conv1")
    drawn = [ax for ax in axes if ax.images]
    assert len(drawn) == 6  # the input and five maps
    torch.testing.assert_close(torch.as_tensor(drawn[2].images[0].get_array()), maps[1])
    assert axes[0].get_title() == "input" and axes[0].figure._suptitle.get_text() == "conv1"
    with pytest.raises(ValueError, match="outputs\\[0\\]"):
        plot_feature_maps(torch.rand(2, 3, 9, 9))


def test_receptive_field_bars_are_the_fields():
    from alexnet_book.shapes import receptive_fields
    from alexnet_book.viz import plot_receptive_fields

    fields = receptive_fields("paper")
    ax = plot_receptive_fields(fields, 227, highlight="conv4")
    heights = [bar.get_height() for bar in ax.patches]
    # By hand: 11, +2·4, +4·8, +2·8, +2·16 three times, +2·16 for pool5.
    assert heights == [11, 19, 51, 67, 99, 131, 163, 195]
    with pytest.raises(ValueError, match="highlight must name"):
        plot_receptive_fields(fields, 227, highlight="fc6")


def test_feature_maps_chosen_by_index_keep_their_numbers():
    from alexnet_book.viz import plot_feature_maps

    maps = torch.rand(10, 5, 5)
    axes = plot_feature_maps(maps, indices=[0, 7], columns=2)
    assert [ax.get_title() for ax in axes] == ["map 1", "map 8"]
    torch.testing.assert_close(torch.as_tensor(axes[1].images[0].get_array()), maps[7])
    with pytest.raises(ValueError, match="indices must lie in 0..9"):
        plot_feature_maps(maps, indices=[10])


# The paper's outputs as it writes them (PAPER_FACTS.md: Section 3.5 and Figure 2), and its
# windows: conv kernels and strides from the table, every pool 3×3 with stride 2 (Section 3.4).
PAPER_LAYERS = {
    "conv1": ("55×55×96", "11×11\nstride 4"), "pool1": ("27×27×96", "3×3\nstride 2"),
    "conv2": ("27×27×256", "5×5\nstride 1"), "pool2": ("13×13×256", "3×3\nstride 2"),
    "conv3": ("13×13×384", "3×3\nstride 1"), "conv4": ("13×13×384", "3×3\nstride 1"),
    "conv5": ("13×13×256", "3×3\nstride 1"), "pool5": ("6×6×256", "3×3\nstride 2"),
    "fc6": ("4096", None), "fc7": ("4096", None), "fc8": ("1000", None),
}


def _columns(ax):
    """Each block's labels, by the name written above it: {name: texts in its column}."""
    texts = [(round(t.get_position()[0], 6), t.get_position()[1], t.get_text()) for t in ax.texts]
    top = max(y for _, y, _ in texts)
    return {text: {other for x2, _, other in texts if x2 == x and other != text}
            for x, y, text in texts if y == top}


def _boxes_under(ax, name):
    [label] = [t for t in ax.texts if t.get_text() == name]
    x = label.get_position()[0]
    return [p for p in ax.patches if abs(p.get_x() + p.get_width() / 2 - x) < 1e-9]


def test_network_figure_shows_the_papers_layers_and_shapes():
    from alexnet_book.viz import plot_network

    ax = plot_network("paper")
    columns = _columns(ax)
    assert [name for name in columns if name != "input"] == list(PAPER_LAYERS)
    assert "227×227×3" in columns["input"]
    for name, (shape, window) in PAPER_LAYERS.items():
        assert shape in columns[name], (name, columns[name])
        if window:
            assert window in columns[name], (name, columns[name])
    # The paper's two GPUs: conv2, conv4 and conv5 see only their own half (groups=2).
    halves = {name: len(_boxes_under(ax, name)) for name in PAPER_LAYERS if "conv" in name}
    assert halves == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}


def test_network_figure_of_torchvision_matches_torchvisions_modules():
    import torchvision
    from torch import nn

    from alexnet_book.viz import plot_network

    with torch.device("meta"):
        reference = torchvision.models.alexnet()
        x = torch.zeros(1, 3, 224, 224)
    expected = {}  # our names for torchvision's layers, in order, with what they produce
    names = iter(["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"])
    for layer in reference.features:
        x = layer(x)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            kernel, stride = layer.kernel_size, layer.stride
            kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
            stride = stride[0] if isinstance(stride, tuple) else stride
            expected[next(names)] = (f"{x.shape[2]}×{x.shape[3]}×{x.shape[1]}",
                                     f"{kernel[0]}×{kernel[1]}\nstride {stride}",
                                     getattr(layer, "groups", 1))
    x = reference.avgpool(x)
    expected["avgpool"] = (f"{x.shape[2]}×{x.shape[3]}×{x.shape[1]}", "adaptive", 1)
    linears = [layer for layer in reference.classifier if isinstance(layer, nn.Linear)]
    for name, layer in zip(["fc6", "fc7", "fc8"], linears):
        expected[name] = (str(layer.out_features), None, 1)

    ax = plot_network("torchvision")
    columns = _columns(ax)
    assert [name for name in columns if name != "input"] == list(expected)
    for name, (shape, window, groups) in expected.items():
        assert shape in columns[name], (name, columns[name])
        assert window is None or window in columns[name], (name, columns[name])
        assert len(_boxes_under(ax, name)) == groups


def test_network_figure_refuses_an_unknown_variant():
    from alexnet_book.viz import plot_network

    with pytest.raises(ValueError, match=r"'alexnet'.*\['paper', 'torchvision'\]"):
        plot_network("alexnet")
    with pytest.raises(TypeError, match="variant name"):
        plot_network(2012)


def test_book_style_is_transparent_with_dark_grey_text(tmp_path):
    import matplotlib.image
    from matplotlib.colors import to_rgb

    from alexnet_book.viz import use_book_style

    def corner_alpha(name):
        figure, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        figure.savefig(tmp_path / name)
        plt.close(figure)
        return matplotlib.image.imread(tmp_path / name)[0, 0, 3]

    with matplotlib.rc_context():
        assert corner_alpha("default.png") == 1.0  # matplotlib's default: an opaque white box
        use_book_style()
        assert corner_alpha("book.png") == 0.0
        figure = plt.figure()
        text = figure.text(0.5, 0.5, "conv1")
        plt.close(figure)
        red, green, blue = to_rgb(text.get_color())
        assert red == green == blue and 0 < red < 0.35  # dark grey, not black
        assert plt.rcParams["axes.labelcolor"] == text.get_color()
