"""The two columns compute what the grouped network computes (Section 3.2)."""

import pytest
import torch
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.two_gpu import TwoColumnAlexNet

SMALL = dict(width=1 / 4, input_size=67, num_classes=10)


def _devices():
    if torch.cuda.device_count() >= 2:
        return ("cuda:0", "cuda:1")
    return ("cpu", "cpu")


def test_columns_equal_the_grouped_network_without_lrn():
    torch.manual_seed(0)
    grouped = AlexNet("paper", norm="none", init="kaiming", **SMALL).eval()
    columns = TwoColumnAlexNet(grouped, _devices()).eval()
    x = torch.randn(3, 3, 67, 67)
    with torch.no_grad():
        torch.testing.assert_close(columns(x).cpu(), grouped(x), rtol=1e-4, atol=1e-5)


def test_each_column_holds_half_of_every_layer():
    grouped = AlexNet("paper", **SMALL)
    columns = TwoColumnAlexNet(grouped, ("cpu", "cpu"))
    column_params = sum(p.numel() for p in columns.columns[0].parameters())
    # Half the kernels of every layer: conv1 48 of 96 (×1/4: 12 of 24), and so on.
    assert columns.columns[0].conv1[0].out_channels == grouped.conv1.out_channels // 2
    assert columns.columns[0].conv2[0].in_channels == grouped.conv1.out_channels // 2
    assert columns.columns[0].conv3[0].in_channels == grouped.conv2.out_channels  # reads both
    total = 2 * column_params + sum(p.numel() for p in columns.fc8.parameters())
    assert total == sum(p.numel() for p in grouped.parameters())


def test_with_lrn_only_the_channels_next_to_the_split_differ():
    torch.manual_seed(0)
    grouped = AlexNet("paper", init="kaiming", **SMALL).eval()
    columns = TwoColumnAlexNet(grouped, ("cpu", "cpu")).eval()
    x = torch.randn(2, 3, 67, 67)
    with torch.no_grad():
        single = grouped.norm1(grouped.relu1(grouped.conv1(x)))
        halves = [column.conv1[:3](x) for column in columns.columns]  # conv, ReLU, LRN
    split = torch.cat(halves, dim=1)
    differs = [c for c in range(single.shape[1])
               if not torch.allclose(single[:, c], split[:, c], rtol=1e-5, atol=1e-6)]
    middle = single.shape[1] // 2
    assert differs and set(differs) <= {middle - 2, middle - 1, middle, middle + 1}  # n = 5


def test_bad_input():
    with pytest.raises(ValueError, match="groups=2"):
        TwoColumnAlexNet(AlexNet("paper", groups=1, **SMALL))
    with pytest.raises(ValueError, match="AlexNet\\('paper'\\)"):
        TwoColumnAlexNet(AlexNet("torchvision", **SMALL))
    with pytest.raises(ValueError, match="AlexNet\\('paper'\\)"):
        TwoColumnAlexNet(nn.Linear(2, 2))


def test_exchanges_are_counted_where_the_paper_says_the_gpus_communicate():
    torch.manual_seed(0)
    model = AlexNet("paper", width=1 / 8, num_classes=10, input_size=67, norm="none").eval()
    columns = TwoColumnAlexNet(model)
    assert columns.exchanges == []
    with torch.no_grad():
        columns(torch.randn(3, 3, 67, 67))
    # At 67: pool2 is 32 maps of 3×3, pool5 32 maps of 1×1, fc6 and fc7 512 units; per image.
    # fc8 runs on the first device, so only the second column's half of fc7 crosses.
    assert columns.exchanges == [("conv3", 32 * 3 * 3), ("fc6", 32), ("fc7", 512),
                                 ("fc8", 512 // 2)]
