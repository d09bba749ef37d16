"""Layer outputs against the model's own forward pass; neighbours against brute force."""

import pytest
import torch

from alexnet_book import AlexNet
from alexnet_book.probe import layer_outputs, nearest_neighbours, neighbour_label_agreement


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return AlexNet("paper", width=1 / 8, num_classes=10, input_size=67, in_channels=1).train()


def test_outputs_equal_the_layers_run_by_hand(small):
    x = torch.randn(3, 1, 67, 67)
    outputs = layer_outputs(small, x, ["conv1", "pool2", "fc8"])
    assert list(outputs) == ["conv1", "pool2", "fc8"]
    assert small.training  # the mode is given back
    small.eval()
    with torch.no_grad():
        torch.testing.assert_close(outputs["conv1"], small.conv1(x))
        torch.testing.assert_close(outputs["fc8"], small(x))
    small.train()


def test_convolutions_take_larger_images(small):
    # 227 − 11 = 216 = 4·54: conv1 gives 55 on a 227 input whatever the net was trained on.
    out = layer_outputs(small, torch.randn(1, 1, 227, 227), "conv1")["conv1"]
    assert out.shape == (1, small.conv1.out_channels, 55, 55)


def test_bad_names_and_shapes(small):
    with pytest.raises(ValueError, match="no layer named \\['conv9'\\]"):
        layer_outputs(small, torch.randn(1, 1, 67, 67), ["conv9"])
    with pytest.raises(ValueError, match="unsqueeze"):
        layer_outputs(small, torch.randn(1, 67, 67), "conv1")
    with pytest.raises(ValueError, match="fc6 cannot take an input"):
        layer_outputs(small, torch.randn(1, 1, 99, 99), "fc6")


def test_neighbours_match_brute_force():
    torch.manual_seed(1)
    vectors, queries = torch.randn(40, 6), torch.randn(7, 6)
    found = nearest_neighbours(vectors, queries, k=3)
    for q, row in zip(queries, found):
        distances = [(q - v).norm().item() for v in vectors]
        assert row.tolist() == sorted(range(40), key=distances.__getitem__)[:3]


def test_a_vector_is_not_its_own_neighbour():
    vectors = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert nearest_neighbours(vectors, vectors, 1, exclude_self=True).flatten().tolist() == [1, 0, 1, 2]


def test_label_agreement_by_hand():
    # Two tight clusters far apart: every neighbour shares the label; shuffled labels do not.
    vectors = torch.tensor([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    assert neighbour_label_agreement(vectors, torch.tensor([0, 0, 0, 1, 1, 1]), k=2) == 1.0
    assert neighbour_label_agreement(vectors, torch.tensor([0, 1, 0, 1, 0, 1]), k=2) == pytest.approx(2 / 6)


def test_neighbour_errors():
    with pytest.raises(ValueError, match="same length"):
        nearest_neighbours(torch.zeros(4, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="only 3 vectors"):
        nearest_neighbours(torch.zeros(4, 3), torch.zeros(4, 3), k=4, exclude_self=True)
    with pytest.raises(ValueError, match="one label per vector"):
        neighbour_label_agreement(torch.zeros(4, 3), torch.zeros(3))
