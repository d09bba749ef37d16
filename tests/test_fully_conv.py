"""fc6–fc8 rewritten as convolutions compute the same scores, and slide over larger images."""

import pytest
import torch
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.fully_conv import convolutionalize, linear_as_conv


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_equal_at_the_built_size(variant):
    torch.manual_seed(0)
    model = AlexNet(variant, width=1 / 4, num_classes=10).eval()
    size = model.input_size
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        scores = convolutionalize(model)(x)
        assert scores.shape == (2, 10, 1, 1)
        torch.testing.assert_close(scores.flatten(1), model(x), rtol=1e-4, atol=1e-5)


def test_the_fc6_convolution_is_the_linear_layer_on_pool5():
    fc6 = nn.Linear(256 * 6 * 6, 32)
    conv = linear_as_conv(fc6, 256, 6)
    assert conv.weight.shape == (32, 256, 6, 6)
    x = torch.randn(3, 256, 6, 6)
    torch.testing.assert_close(conv(x).flatten(1), fc6(x.flatten(1)))


def test_a_larger_image_gives_a_map_32_pixels_apart():
    torch.manual_seed(0)
    model = AlexNet("paper", width=1 / 8, num_classes=10, input_size=67, in_channels=1).eval()
    net = convolutionalize(model)
    with torch.no_grad():
        scores = net(torch.randn(1, 1, 67 + 3 * 32, 67 + 32))
    # conv1 stride 4, then three pools of stride 2: 4·2·2·2 = 32 input pixels per step.
    assert scores.shape == (1, 10, 4, 2)


def test_a_window_without_padding_effects_equals_its_crop():
    # Without padding anywhere, each map position is exactly the net on its crop.
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    crop_size = 15  # (15 − 5)/2 + 1 = 6, pooled to 3
    conv = nn.Sequential(*layers[:3], linear_as_conv(layers[4], 4, 3))
    image = torch.randn(1, 1, crop_size + 4 * 2, crop_size)
    with torch.no_grad():
        scores = conv(image)  # 4 pixels per step: stride 2 × pool 2
        assert scores.shape == (1, 5, 3, 1)
        for row in range(3):
            crop = image[:, :, 4 * row: 4 * row + crop_size]
            torch.testing.assert_close(scores[:, :, row, 0], layers(crop))


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="reads 100 values, but 4×6×6 blocks have 144"):
        linear_as_conv(nn.Linear(100, 3), 4, 6)
    with pytest.raises(TypeError, match="nn.Linear"):
        linear_as_conv(nn.Conv2d(1, 1, 1), 1, 1)
    with pytest.raises(TypeError, match="alexnet_book AlexNet"):
        convolutionalize(nn.Sequential())
