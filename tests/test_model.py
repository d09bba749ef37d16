"""AlexNet's two variants and its switches, against the paper and torchvision."""

import pytest
import torch
import torchvision
from torch import nn

from alexnet_book import AlexNet, from_torchvision

SMALL = dict(width=1 / 8, input_size=67, num_classes=10)


@pytest.fixture(scope="module")
def paper():
    torch.manual_seed(0)
    return AlexNet("paper")


def _layers_of(model, kind):
    return {name: m for name, m in model.named_children() if isinstance(m, kind)}


def test_paper_architecture(paper):
    convs = _layers_of(paper, nn.Conv2d)
    assert [c.out_channels for c in convs.values()] == [96, 256, 384, 384, 256]
    assert [c.kernel_size[0] for c in convs.values()] == [11, 5, 3, 3, 3]
    assert [c.groups for c in convs.values()] == [1, 2, 1, 2, 2]  # conv3 sees both GPUs
    assert convs["conv3"].in_channels // convs["conv3"].groups == 256  # 3×3×256, not ×128
    fcs = _layers_of(paper, nn.Linear)
    assert [(f.in_features, f.out_features) for f in fcs.values()] == \
        [(9216, 4096), (4096, 4096), (4096, 1000)]
    assert all((p.kernel_size, p.stride) == (3, 2) for p in _layers_of(paper, nn.MaxPool2d).values())
    assert paper.expected_input_shape == (3, 227, 227)


def test_paper_order_relu_then_lrn_then_pool_and_dropout_on_outputs(paper):
    names = [name for name, _ in paper.named_children()]
    assert names[:8] == ["conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2"]
    assert names[names.index("conv5"):] == [
        "conv5", "relu5", "pool5", "flatten",
        "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8",
    ]
    lrn = paper.norm1
    # The paper's k=2, n=5, alpha=1e-4 (sum), beta=0.75 is PyTorch's alpha = 5e-4 (mean).
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 5e-4, 0.75, 2.0)
    assert paper.drop6.p == 0.5


def test_paper_counts(paper):
    assert sum(p.numel() for p in paper.parameters()) == 60_965_224


def test_paper_initialisation(paper):
    for name, layer in {**_layers_of(paper, nn.Conv2d), **_layers_of(paper, nn.Linear)}.items():
        weights = layer.weight.detach()
        assert abs(weights.std().item() - 0.01) < 5e-4, name
        assert abs(weights.mean().item()) < 5e-4, name
        expected_bias = 1.0 if name in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0
        assert torch.all(layer.bias == expected_bias), name


def test_kaiming_initialisation():
    torch.manual_seed(0)
    model = AlexNet(init="kaiming", width=1 / 2, input_size=67, num_classes=10)
    for layer in [*_layers_of(model, nn.Conv2d).values(), *_layers_of(model, nn.Linear).values()]:
        fan_in = layer.weight[0].numel()  # inputs of one output unit
        expected = (2 / fan_in) ** 0.5  # He et al. (2015), ReLU gain √2
        assert abs(layer.weight.std().item() / expected - 1) < 0.05
        assert torch.all(layer.bias == 0)
    tanh = AlexNet(init="kaiming", activation="tanh", **SMALL)
    assert abs(tanh.fc7.weight.std().item() / ((5 / 3) / 512 ** 0.5) - 1) < 0.05  # tanh gain 5/3


def test_paper_forward_and_backward_small():
    model = AlexNet(**SMALL)
    x = torch.randn(4, 3, 67, 67)
    out = model(x)
    assert out.shape == (4, 10)
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def _torchvision_layout(modules):
    """Types and hyper-parameters of the layers, in the order they run."""
    layout = []
    for m in modules:
        if isinstance(m, nn.Conv2d):
            layout.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride,
                           m.padding, m.groups))
        elif isinstance(m, nn.Linear):
            layout.append(("fc", m.in_features, m.out_features))
        elif isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout)):
            layout.append((type(m).__name__, str(m)))
        elif isinstance(m, nn.ReLU):  # ours is not in-place, so hooks see conv outputs intact
            layout.append("ReLU")
    return layout


def test_torchvision_variant_has_torchvisions_layout():
    ours = AlexNet("torchvision")
    theirs = torchvision.models.alexnet()
    assert _torchvision_layout(ours.children()) == _torchvision_layout(
        [*theirs.features, theirs.avgpool, *theirs.classifier])
    assert sum(p.numel() for p in ours.parameters()) == 61_100_840


def test_from_torchvision_gives_the_same_outputs():
    torch.manual_seed(1)
    theirs = torchvision.models.alexnet(num_classes=17).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = theirs(x)
        from_model = from_torchvision(theirs).eval()(x)
        from_state = from_torchvision(theirs.state_dict()).eval()(x)
    torch.testing.assert_close(from_model, expected)
    torch.testing.assert_close(from_state, expected)
    assert from_torchvision(theirs).variant == "torchvision"


def test_from_torchvision_bad_input():
    with pytest.raises(TypeError, match="torchvision's AlexNet or its state_dict"):
        from_torchvision("alexnet.pth")
    state = torchvision.models.alexnet().state_dict()
    del state["features.3.bias"]
    state["features.99.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['features.3.bias'\].*unexpected "
                                         r"\['features.99.weight'\]"):
        from_torchvision(state)
    wrong_shape = torchvision.models.alexnet().state_dict()
    wrong_shape["features.3.weight"] = torch.zeros(10, 64, 5, 5)
    with pytest.raises(ValueError, match="do not have torchvision AlexNet's shapes"):
        from_torchvision(wrong_shape)


def test_switches():
    tanh = AlexNet(activation="tanh", **SMALL)
    assert len(_layers_of(tanh, nn.Tanh)) == 7 and not _layers_of(tanh, nn.ReLU)
    assert not _layers_of(AlexNet(norm="none", **SMALL), nn.LocalResponseNorm)
    assert len(_layers_of(AlexNet(norm="batchnorm", **SMALL), nn.BatchNorm2d)) == 2
    assert AlexNet(lrn_convention="pytorch", **SMALL).norm1.alpha == 1e-4
    assert AlexNet(lrn_convention="caffe", **SMALL).norm1.k == 1.0
    assert not _layers_of(AlexNet(dropout=0, **SMALL), nn.Dropout)
    assert AlexNet(groups=1, **SMALL).conv2.groups == 1
    grey = AlexNet(in_channels=1, **SMALL)
    assert grey(torch.randn(1, 1, 67, 67)).shape == (1, 10)
    tv = AlexNet("torchvision", dropout=0.3, **SMALL)
    assert [name for name, _ in tv.named_children()][-7:] == \
        ["drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8"]


def test_width_keeps_the_shape_and_divisibility():
    small = AlexNet(width=1 / 8, num_classes=10)
    assert [c.out_channels for c in _layers_of(small, nn.Conv2d).values()] == [12, 32, 48, 48, 32]
    assert small.fc6.out_features == 512
    odd = AlexNet(width=0.3, **{k: v for k, v in SMALL.items() if k != "width"})
    assert all(c.out_channels % 2 == 0 for c in _layers_of(odd, nn.Conv2d).values())


def test_the_papers_one_gpu_comparison_net():
    # Section 3.2 and its footnote: half as many kernels in each conv layer, but the last conv
    # layer and the fully-connected layers kept whole, "to make the two nets have approximately
    # the same number of parameters"; trained on one GPU, so nothing is grouped.
    one_gpu = AlexNet(groups=1, kernels=(48, 128, 192, 192, 256), init="pytorch")
    convs = _layers_of(one_gpu, nn.Conv2d)
    assert [c.weight.shape[:2] for c in convs.values()] == \
        [(48, 3), (128, 48), (192, 128), (192, 192), (256, 192)]
    assert all(c.groups == 1 for c in convs.values())
    assert one_gpu.fc6.in_features == 6 * 6 * 256 and one_gpu.fc6.out_features == 4096
    two_gpu = sum(p.numel() for p in AlexNet(init="pytorch").parameters())
    assert abs(sum(p.numel() for p in one_gpu.parameters()) / two_gpu - 1) < 0.03
    # width scales the given kernels as it scales the variant's: 48/8, 128/8, ...
    small = AlexNet(groups=1, kernels=(48, 128, 192, 192, 256), width=1 / 8, num_classes=10)
    assert [c.out_channels for c in _layers_of(small, nn.Conv2d).values()] == [6, 16, 24, 24, 32]
    assert small.options["kernels"] == (48, 128, 192, 192, 256)


def test_non_overlapping_pooling_gives_the_same_sizes():
    # Section 3.4: s = 2, z = 2 produces output of the same dimensions as s = 2, z = 3.
    overlapping, plain = AlexNet(init="pytorch"), AlexNet(pooling="non-overlapping", init="pytorch")
    assert plain.pool1.kernel_size == 2
    assert overlapping.fc6.in_features == plain.fc6.in_features == 9216


def test_wrong_input_size_names_the_expected_size(paper):
    with pytest.raises(ValueError, match=r"built for 227×227 inputs, got 224×224.*54\.25"):
        paper(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        paper(torch.zeros(3, 227, 227))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 3, 227, 227\), got "
                                         r"\(1, 1, 227, 227\)"):
        paper(torch.zeros(1, 1, 227, 227))
    with pytest.raises(TypeError, match="torch.Tensor"):
        paper([[1.0]])
    tv = AlexNet("torchvision", **SMALL)
    assert tv(torch.zeros(1, 3, 100, 90)).shape == (1, 10)  # adaptive pooling takes any size
    with pytest.raises(ValueError, match="at least 63×63"):
        tv(torch.zeros(1, 3, 40, 40))


@pytest.mark.parametrize(
    "options,pattern",
    [
        (dict(variant="resnet"), "variant must be one of"),
        (dict(width=0), r"width must be a number in \(0, 16\]"),
        (dict(groups=0), "groups must be a whole number"),
        (dict(num_classes=2.5), "num_classes must be a whole number"),
        (dict(activation="gelu"), r"activation must be one of \['relu', 'tanh'\]"),
        (dict(norm="layernorm"), "norm must be one of"),
        (dict(pooling="avg"), "pooling must be one of"),
        (dict(dropout=1.0), r"dropout is a probability in \[0, 1\)"),
        (dict(init="xavier"), r"init must be one of \['kaiming', 'paper', 'pytorch'\]"),
        (dict(input_size=50), "too small.*smallest input that works is 67×67"),
        (dict(kernels=(96, 256, 384)), r"kernels must be five whole numbers ≥ 1.*\(96, 256, 384\)"),
        (dict(kernels=(96, 256, 0, 384, 256)), "kernels must be five whole numbers"),
        (dict(kernels=96), "kernels must be five whole numbers"),
        (dict(norm="none", lrn_convention="caffe"), "only applies to LRN.*norm='none'"),
        (dict(variant="torchvision", lrn_convention="paper"), "only applies to LRN"),
        # 96 kernels × 0.005 in groups of 2 rounds to 0; 2 / 2 / 96 is the least that works.
        (dict(width=0.005), r"leaves conv1 with no kernels.*width > 0\.01042"),
    ],
)
def test_bad_options(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        AlexNet(**options)


def test_repr_names_the_variant(paper):
    assert "variant='paper'" in repr(paper) and "input 3×227×227" in repr(paper)
    assert "One weird trick" in repr(AlexNet("torchvision", **SMALL))


@pytest.mark.parametrize("options", [
    dict(),
    dict(variant="torchvision"),
    dict(width=1 / 8, input_size=67, in_channels=1, num_classes=10, norm="batchnorm"),
    dict(kernels=(48, 128, 192, 192, 256), groups=1, pooling="non-overlapping",
         activation="tanh", dropout=0, lrn_convention="caffe"),
])
def test_build_args_build_the_same_network_again(options):
    model = AlexNet(**options)
    again = AlexNet(**model.build_args)
    assert repr(again) == repr(model)
    again.load_state_dict(model.state_dict())  # the same names and shapes: a checkpoint fits
    assert again.build_args == model.build_args
