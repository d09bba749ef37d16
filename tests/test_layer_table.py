"""The per-layer table against what PyTorch produces: hooks, numel() and the flop counter."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from alexnet_book import AlexNet, layer_table

# Section 3.5 / Figure 2 as tabulated in PAPER_FACTS.md: output, params, neurons, multiply-adds.
PAPER_ROWS = {
    "conv1": ((96, 55, 55), 34_944, 290_400, 105_415_200),
    "conv2": ((256, 27, 27), 307_456, 186_624, 223_948_800),
    "conv3": ((384, 13, 13), 885_120, 64_896, 149_520_384),
    "conv4": ((384, 13, 13), 663_936, 64_896, 112_140_288),
    "conv5": ((256, 13, 13), 442_624, 43_264, 74_760_192),
    "fc6": ((4096,), 37_752_832, 4_096, 37_748_736),
    "fc7": ((4096,), 16_781_312, 4_096, 16_777_216),
    "fc8": ((1000,), 4_097_000, 1_000, 4_096_000),
}

SMALL_NETS = [
    dict(variant="paper", width=1 / 8, input_size=67, num_classes=10),
    dict(variant="paper", width=1 / 4, input_size=99, num_classes=7, pooling="non-overlapping"),
    dict(variant="torchvision", width=1 / 8, input_size=64, num_classes=10),
    dict(variant="paper", width=1 / 8, in_channels=1, input_size=131, groups=1),
]


def _hooked_shapes(model, input_shape):
    shapes = {}
    hooks = [module.register_forward_hook(
        lambda m, args, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, module in model.named_modules() if name]
    with torch.no_grad():
        model.eval()(torch.zeros(2, *input_shape))
    for hook in hooks:
        hook.remove()
    return shapes


def _agrees_with_pytorch(model, table):
    shapes = _hooked_shapes(model, table.input_shape)
    modules = dict(model.named_modules())
    for row in table:
        assert row.out_shape == shapes[row.name], row.name
        assert row.params == sum(p.numel() for p in modules[row.name].parameters()), row.name
    assert table.total_params == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *table.input_shape))
    per_module = counter.get_flop_counts()
    prefix = type(model).__name__
    for row in table:
        flops = sum(per_module.get(f"{prefix}.{row.name}", {}).values())
        assert flops == 2 * row.macs, row.name  # the counter counts a multiply-add as 2 FLOPs
    assert counter.get_total_flops() == 2 * table.total_macs


def test_paper_table_matches_the_paper_and_pytorch():
    model = AlexNet("paper")
    table = layer_table(model)
    for name, (shape, params, neurons, macs) in PAPER_ROWS.items():
        row = table[name]
        assert (row.out_shape, row.params, row.neurons, row.macs) == (shape, params, neurons, macs)
    assert table["pool5"].out_shape == (256, 6, 6)  # 9,216 values for fc6
    assert table.total_params == 60_965_224
    assert table.total_macs == 724_406_816
    _agrees_with_pytorch(model, table)


def test_torchvision_model_itself_goes_through_the_table():
    model = torchvision.models.alexnet()
    table = layer_table(model, 224)
    assert table.total_params == 61_100_840  # torchvision's AlexNet_Weights meta num_params
    assert table.total_macs == 714_188_480  # 0.71 GFLOPS in torchvision's docs
    _agrees_with_pytorch(model, table)


@pytest.mark.parametrize("options", SMALL_NETS, ids=lambda o: "-".join(map(str, o.values())))
def test_small_variants_agree_with_pytorch(options):
    model = AlexNet(**options)
    _agrees_with_pytorch(model, layer_table(model))


def test_specs_by_name_and_by_options():
    assert layer_table("torchvision").total_params == 61_100_840
    small = layer_table(dict(width=1 / 8, input_size=67, num_classes=10))
    assert small.input_shape == (3, 67, 67)
    assert small["fc8"].out_shape == (10,)


def test_other_input_size_for_a_model():
    table = layer_table(AlexNet("torchvision"), input_size=(256, 320))
    assert table["conv1"].out_shape == (64, 63, 79)  # (256 + 4 − 11)//4 + 1, (320 + 4 − 11)//4 + 1


def test_table_renders_as_text_and_html():
    table = layer_table("paper")
    text, html = str(table), table._repr_html_()
    assert "60,965,224" in text and "724,406,816" in text and "96×55×55" in text
    assert html.startswith("<table>") and "<th>multiply-adds</th>" in html
    assert html.count("<tr>") == len(table) + 2  # header, rows, total


def test_bad_specs_and_names():
    with pytest.raises(TypeError, match="variant name"):
        layer_table(42)
    with pytest.raises(ValueError, match="variant must be one of"):
        layer_table("resnet")
    with pytest.raises(KeyError, match="no layer named 'conv6'"):
        layer_table("paper")["conv6"]
    with pytest.raises(ValueError, match="pass input_size"):
        layer_table(nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(ValueError, match="at least one nn.Conv2d"):
        layer_table(nn.Sequential(nn.Linear(3, 4)), 8)


def test_mismatched_layers_are_named():
    broken = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(100, 2))
    with pytest.raises(ValueError, match=r"layer '2'.*expects 100 inputs .* 8×6×6 = 288"):
        layer_table(broken, 8)
    too_small = AlexNet("torchvision")
    with pytest.raises(ValueError, match="at layer 'pool5'"):
        layer_table(too_small, 40)


def _measured_field(model, layer_name, input_size, unit):
    """Input rows whose pixels move unit (unit, unit) of the layer: measured by a gradient."""
    captured = {}
    hook = getattr(model, layer_name).register_forward_hook(
        lambda m, args, out: captured.__setitem__("out", out))
    x = torch.randn(1, model.in_channels, input_size, input_size, dtype=torch.float64,
                    requires_grad=True)
    model(x)
    hook.remove()
    (gradient,) = torch.autograd.grad(captured["out"][..., unit, unit].sum(), x)
    rows = gradient.abs().sum(dim=(0, 1, 3)).nonzero().flatten().tolist()
    return rows[0], rows[-1]


@pytest.mark.parametrize("variant,input_size", [("paper", 227), ("torchvision", 224)])
def test_receptive_fields_match_a_gradient(variant, input_size):
    from alexnet_book.shapes import receptive_fields

    torch.manual_seed(0)
    # tanh and average pooling pass a gradient to every pixel of a window (ReLU and max-pooling
    # would zero some): the set of pixels with a gradient is then exactly the field.
    model = AlexNet(variant, activation="tanh", norm="none", dropout=0, width=1 / 8,
                    num_classes=10, init="kaiming").double().eval()
    for name, layer in list(model.named_children()):
        if isinstance(layer, nn.MaxPool2d):
            setattr(model, name, nn.AvgPool2d(layer.kernel_size, layer.stride))
    fields = receptive_fields(model, input_size)
    table = layer_table(model, input_size)
    for name in ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]:
        unit = table[name].out_shape[-1] // 2  # the middle unit, whose field is least clipped
        pixels = fields[name].pixels(unit)
        expected = (max(pixels.start, 0), min(pixels.stop, input_size) - 1)
        assert _measured_field(model, name, input_size, unit) == expected, name


def test_receptive_fields_of_the_paper_network():
    from alexnet_book.shapes import receptive_fields

    # Each field grows by (k − 1) × the product of the strides below: 11, 11 + 2·4 = 19,
    # 19 + 4·8 = 51, 51 + 2·8 = 67, then + 2·16 three times, and + 2·16 at pool5.
    sizes = {name: f.size for name, f in receptive_fields("paper").items()}
    assert sizes == {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99,
                     "conv4": 131, "conv5": 163, "pool5": 195, "fc6": 227, "fc7": 227,
                     "fc8": 227}


def test_receptive_fields_refuse_a_resizing_adaptive_pool():
    from alexnet_book.shapes import receptive_fields

    with pytest.raises(ValueError, match="avgpool resizes"):
        receptive_fields("torchvision", 300)  # pool5 gives 8×8, which avgpool resizes to 6×6


# The paper's kernel shapes per group (PAPER_FACTS.md, Figure 2) and the receptive fields by hand.
PAPER_KERNELS = {"conv1": ("11×11×3", 1), "conv2": ("5×5×48", 2), "conv3": ("3×3×256", 1),
                 "conv4": ("3×3×192", 2), "conv5": ("3×3×192", 2), "fc6": ("9,216", 1),
                 "fc7": ("4,096", 1), "fc8": ("4,096", 1)}


@pytest.mark.parametrize("name", list(PAPER_ROWS))
def test_describe_layer_states_the_papers_numbers(name):
    from alexnet_book.shapes import describe_layer

    facts = describe_layer(name)
    out_shape, params, neurons, macs = PAPER_ROWS[name]
    assert (facts["out_shape"], facts["params"], facts["neurons"], facts["macs"]) == \
        (out_shape, params, neurons, macs)
    assert (facts["kernel_text"], facts["groups"]) == PAPER_KERNELS[name]
    assert facts["kernels"] == out_shape[0]
    assert facts["param_share"] == pytest.approx(params / 60_965_224)
    assert facts["mac_share"] == pytest.approx(macs / 724_406_816)


def test_describe_layer_inputs_and_fields():
    from alexnet_book.shapes import describe_layer

    conv2 = describe_layer("conv2")
    assert conv2["in_shape"] == (96, 27, 27) and conv2["in_text"] == "27×27×96"
    assert conv2["out_text"] == "27×27×256" and (conv2["stride"], conv2["padding"]) == (1, 2)
    # conv1 11, pool1 11 + 2·4 = 19, conv2 19 + 4·8 = 51 pixels; units 8 pixels apart.
    assert (conv2["receptive_field"], conv2["jump"]) == (51, 8)
    assert describe_layer("fc6")["in_text"] == "6×6×256"
    with pytest.raises(ValueError, match="pool layer"):
        describe_layer("pool1")
    with pytest.raises(KeyError, match="no layer named 'conv6'"):
        describe_layer("conv6")


def test_growing_a_receptive_field_by_hand_and_its_errors():
    from alexnet_book.shapes import ReceptiveField, grow_receptive_field

    pixel = ReceptiveField(size=1, jump=1, start=0)
    conv1 = grow_receptive_field(pixel, 11, 4)
    assert conv1 == ReceptiveField(size=11, jump=4, start=0)
    assert grow_receptive_field(conv1, 3, 2) == ReceptiveField(size=19, jump=8, start=0)
    assert grow_receptive_field(conv1, 5, 1, 2).start == -8
    with pytest.raises(TypeError, match="ReceptiveField of the layer underneath"):
        grow_receptive_field(11, 3, 1)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        grow_receptive_field(pixel, 3, 0)
    with pytest.raises(ValueError, match="padding 3 is not smaller than the kernel 3"):
        grow_receptive_field(pixel, 3, 1, 3)
    with pytest.raises(TypeError, match="whole number"):
        grow_receptive_field(pixel, 2.5, 1)


def test_shapes_are_written_as_the_paper_writes_them():
    from alexnet_book.shapes import paper_shape_text

    assert paper_shape_text((96, 55, 55)) == "55×55×96"  # Figure 2: height×width×channels
    assert paper_shape_text((256, 13, 6)) == "13×6×256"  # height first, channels last
    assert paper_shape_text((4096,)) == "4096"
