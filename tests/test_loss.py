"""Next-item losses against their formulas on small tensors."""

import pytest
import torch
import torch.nn.functional as F

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.loss import NextItemLoss, uniform_negatives


class Table(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, ids):
        return self.weight[ids]


@pytest.fixture
def case():
    torch.manual_seed(0)
    return torch.randn(4, 8), torch.tensor([1, 2, 3, 9]), Table(torch.randn(10, 8))


def test_ce_is_softmax_over_all_items(case):
    seq, pos, table = case
    expected = F.cross_entropy(seq @ table.weight.T, pos)
    assert torch.allclose(NextItemLoss("CE", 10)(seq, pos, table), expected)


def test_bpr_uses_the_given_negatives(case):
    seq, pos, table = case
    neg = torch.tensor([5, 6, 7, 8])
    margin = (seq * table.weight[pos]).sum(-1) - (seq * table.weight[neg]).sum(-1)
    expected = -F.logsigmoid(margin).mean()
    assert torch.allclose(NextItemLoss("BPR", 10)(seq, pos, table, neg), expected, atol=1e-6)


def test_infonce_is_cosine_softmax_against_uniform_negatives(case):
    seq, pos, table = case
    loss = NextItemLoss("InfoNCE", 10, temperature=0.07, neg_ratio=5)
    torch.manual_seed(3)
    value = loss(seq, pos, table)
    torch.manual_seed(3)
    negatives = uniform_negatives(pos, 10, 5)
    cos_pos = F.cosine_similarity(seq, table.weight[pos], dim=-1)
    cos_neg = F.cosine_similarity(seq[:, None], table.weight[negatives], dim=-1)
    logits = torch.cat([cos_pos[:, None], cos_neg], 1) / 0.07
    expected = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    assert torch.allclose(value, expected, atol=1e-5)
    assert (negatives > 0).all()


def test_negatives_are_uniform_over_the_items_but_the_target():
    torch.manual_seed(0)
    targets = torch.tensor([1, 5, 9])
    negatives = uniform_negatives(targets, 10, 90_000)
    for target, row in zip(targets, negatives):
        counts = torch.bincount(row, minlength=10)
        assert counts[0] == 0 and counts[target] == 0
        others = counts[[i for i in range(1, 10) if i != target]].float()
        # 8 other items, 11,250 draws each on average: within 3% of it.
        assert (others - 90_000 / 8).abs().max() < 0.03 * 90_000 / 8


def test_unknown_loss_is_refused():
    with pytest.raises(AlphaFuseError, match="loss_type must be one of"):
        NextItemLoss("MSE", 10)
