"""Top-k error against counts done by hand."""

import pytest
import torch

from alexnet_book.metrics import top_k_error, top_k_hits

# Four images, five classes. By hand: image 0's label 2 has the highest score (top-1 hit);
# image 1's label 0 is second (top-2 hit, top-1 miss); image 2's label 4 is the lowest (a miss
# even in the top 4); image 3's label 1 is third.
SCORES = torch.tensor([
    [0.1, 0.2, 0.9, 0.0, 0.3],
    [0.5, 0.1, 0.2, 0.7, 0.0],
    [0.4, 0.3, 0.2, 0.5, 0.1],
    [3.0, 1.0, 0.0, 2.0, -1.0],
])
LABELS = torch.tensor([2, 0, 4, 1])


@pytest.mark.parametrize("k, hits", [(1, [1, 0, 0, 0]), (2, [1, 1, 0, 0]), (3, [1, 1, 0, 1]),
                                     (4, [1, 1, 0, 1]), (5, [1, 1, 1, 1])])
def test_hits_and_error_counted_by_hand(k, hits):
    assert top_k_hits(SCORES, LABELS, k).tolist() == [bool(h) for h in hits]
    assert top_k_error(SCORES, LABELS, k) == pytest.approx(1 - sum(hits) / 4)


def test_softmax_and_logits_give_the_same_error():
    torch.manual_seed(0)
    logits, labels = torch.randn(50, 10), torch.randint(0, 10, (50,))
    for k in (1, 5):
        assert top_k_error(logits, labels, k) == top_k_error(logits.softmax(1), labels, k)


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="shape \\(images, classes\\)"):
        top_k_error(torch.zeros(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="one class index per image"):
        top_k_error(SCORES, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="lie in 0..4"):
        top_k_error(SCORES, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="top-6 needs at least 6 classes"):
        top_k_error(SCORES, LABELS, 6)
    with pytest.raises(ValueError, match="at least 1"):
        top_k_error(SCORES, LABELS, 0)
    with pytest.raises(ValueError, match="at least one image"):
        top_k_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
