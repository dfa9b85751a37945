"""Next-item losses against their formulas on small tensors."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import Table

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model import loss as loss_module
from recbole_alphafuse.model.loss import (
    ItemSoftmax,
    NextItemLoss,
    generalised_bce,
    resolve_loss_type,
    shared_negative_pool,
    uniform_negatives,
)


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


def loss_and_gradients(loss_fn, seq, table):
    seq = seq.clone().requires_grad_()
    weight = table.weight.detach().clone().requires_grad_()
    loss = loss_fn(seq, Table(weight))
    loss.backward()
    return loss.detach(), seq.grad, weight.grad


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10, 64])
def test_chunked_ce_has_the_loss_and_gradients_of_the_materialised_ce(case, chunk_size):
    seq, pos, table = case
    table.weight[0] = 0.0  # [PAD], as in every strategy's table
    full = loss_and_gradients(lambda q, t: NextItemLoss("CE", 10)(q, pos, t), seq, table)
    chunked_loss = NextItemLoss("CE", 10, ce_chunk_size=chunk_size)
    chunked = loss_and_gradients(lambda q, t: chunked_loss(q, pos, t), seq, table)
    assert torch.allclose(chunked[0], full[0], atol=1e-6)
    assert torch.allclose(chunked[1], full[1], atol=1e-6)
    # The item rows' gradients; [PAD] gets none (a strategy's table never trains it).
    assert torch.allclose(chunked[2][1:], full[2][1:], atol=1e-6)
    assert not chunked[2][0].any()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cosine, temperature", [(False, 1.0), (True, 0.07)])
def test_full_softmax_has_the_loss_and_gradients_of_the_logit_matrix(
    monkeypatch, fused, cosine, temperature
):
    torch.manual_seed(0)
    seq, pos, table = torch.randn(9, 8), torch.randint(1, 10, (9,)), Table(torch.randn(10, 8))
    if fused:
        # Chunks of 3 targets: 9 targets in three chunks.
        monkeypatch.setattr(loss_module, "FUSED_CE_LOGITS", 30)
        assert hasattr(F, "linear_cross_entropy")  # torch >= 2.13
    else:  # the older torch's path
        monkeypatch.delattr(F, "linear_cross_entropy", raising=False)

    def by_hand(queries, items):
        rows = F.normalize(items.weight, dim=-1) if cosine else items.weight
        queries = F.normalize(queries, dim=-1) if cosine else queries
        return F.cross_entropy(queries @ rows.T / temperature, pos)

    softmax = ItemSoftmax(10, cosine=cosine, temperature=temperature)
    expected = loss_and_gradients(by_hand, seq, table)
    for value, reference in zip(
        loss_and_gradients(lambda q, t: softmax(q, pos, t), seq, table), expected
    ):
        assert torch.allclose(value, reference, atol=1e-5)


def test_chunked_ce_never_builds_more_than_a_chunk_of_logits():
    torch.manual_seed(0)
    seq, table = torch.randn(32, 8), Table(torch.randn(1000, 8))
    shapes = []
    original = torch.Tensor.__matmul__

    def recording_matmul(left, right):
        shapes.append(tuple(right.shape))
        return original(left, right)

    softmax = ItemSoftmax(1000, chunk_size=100)
    torch.Tensor.__matmul__ = recording_matmul
    try:
        softmax(seq.requires_grad_(), torch.randint(1, 1000, (32,)), table).backward()
    finally:
        torch.Tensor.__matmul__ = original
    # 10 chunks, each scored in the forward pass and again in the backward pass.
    assert shapes == [(8, 100)] * 20


def test_sampled_softmax_over_every_real_item_is_the_full_softmax_over_them(case):
    seq, pos, table = case
    sampled = NextItemLoss("SampledSoftmax", 10, n_negatives=9)
    over_real_items = F.cross_entropy(seq @ table.weight[1:].T, pos - 1)
    assert torch.allclose(sampled(seq, pos, table), over_real_items, atol=1e-6)
    # A larger pool cannot hold more than every real item.
    assert torch.allclose(
        NextItemLoss("SampledSoftmax", 10, n_negatives=500)(seq, pos, table), over_real_items
    )


def test_the_pool_is_shared_uniform_and_without_padding():
    torch.manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(3000):
        pool = shared_negative_pool(10, 3, "cpu")
        assert len(pool.unique()) == 3
        counts += torch.bincount(pool, minlength=10)
    assert counts[0] == 0
    # Each real item in the pool with probability 3 / 9: 1,000 times in 3,000 draws.
    assert (counts[1:] - 1000).abs().max() < 100


def test_sampled_softmax_masks_collisions_and_applies_log_q(case):
    seq, pos, table = case
    softmax = ItemSoftmax(10, n_negatives=4)
    torch.manual_seed(5)
    loss = softmax(seq, pos, table)
    torch.manual_seed(5)
    pool = shared_negative_pool(10, 4, "cpu")
    collides = pool.unsqueeze(0) == pos.unsqueeze(1)
    assert collides.any(), "the seed should draw at least one target into the pool"
    seen = {}

    def record(target_logits, pooled_logits):
        seen.update(target=target_logits, pooled=pooled_logits)
        return torch.zeros_like(target_logits)

    torch.manual_seed(5)
    softmax.pooled_mean(seq, pos, table, record)
    assert torch.equal(torch.isinf(seen["pooled"]), collides)
    assert torch.allclose(seen["pooled"][~collides], (seq @ table.weight[pool].T)[~collides])
    target = (seq * table.weight[pos]).sum(-1)
    assert torch.allclose(seen["target"], target)
    corrected = (seq @ table.weight[pool].T - torch.log(torch.tensor(4 / 9))).masked_fill(
        collides, float("-inf")
    )
    logits = torch.cat([target[:, None], corrected], dim=1)
    assert torch.allclose(loss, (torch.logsumexp(logits, 1) - logits[:, 0]).mean())


@pytest.mark.parametrize("loss_type", ["SampledSoftmax", "gBCE"])
def test_a_pool_that_is_only_the_target_gives_finite_gradients(loss_type):
    # One real item: the pool is the target itself, masked, so every pooled logit is -inf.
    seq, pos, table = torch.randn(3, 4), torch.tensor([1, 1, 1]), Table(torch.randn(2, 4))
    loss, *grads = loss_and_gradients(
        lambda q, t: NextItemLoss(loss_type, 2, n_negatives=1)(q, pos, t), seq, table
    )
    assert torch.isfinite(loss)
    assert all(torch.isfinite(grad).all() for grad in grads)
    if loss_type == "SampledSoftmax":
        assert loss == 0  # the target alone: probability one


@pytest.mark.parametrize("loss_type", ["SampledSoftmax", "gBCE"])
def test_pooled_losses_over_chunks_of_targets_keep_the_loss_and_gradients(loss_type, monkeypatch):
    torch.manual_seed(1)
    seq, pos, table = torch.randn(10, 8), torch.randint(1, 100, (10,)), Table(torch.randn(100, 8))
    pos[:3] = torch.tensor([4, 17, 4])  # a repeated target, on both sides of a chunk boundary
    loss = NextItemLoss(loss_type, 100, n_negatives=6)

    def run():
        torch.manual_seed(2)
        return loss_and_gradients(lambda q, t: loss(q, pos, t), seq, table)

    whole = run()
    rows_scored = []
    original = torch.Tensor.__matmul__

    def recording_matmul(left, right):
        rows_scored.append(len(left))
        return original(left, right)

    monkeypatch.setattr(loss_module, "FUSED_CE_LOGITS", 12)  # 12 logits / 6 pooled: 2 targets
    monkeypatch.setattr(torch.Tensor, "__matmul__", recording_matmul)
    chunked = run()
    monkeypatch.undo()
    # 5 chunks of 2 targets, each scored against the pool forward and again backward.
    assert rows_scored == [2] * 10
    for part, expected in zip(chunked, whole):
        assert torch.allclose(part, expected, atol=1e-6)


@pytest.mark.parametrize("loss_type", ["SampledSoftmax", "gBCE"])
def test_sampled_gradients_reach_only_the_pooled_and_target_rows(loss_type):
    torch.manual_seed(1)
    seq, pos, table = torch.randn(4, 8), torch.tensor([3, 7, 7, 50]), Table(torch.randn(100, 8))
    torch.manual_seed(2)
    _, _, grad = loss_and_gradients(
        lambda q, t: NextItemLoss(loss_type, 100, n_negatives=6)(q, pos, t), seq, table
    )
    torch.manual_seed(2)
    scored = set(shared_negative_pool(100, 6, "cpu").tolist()) | set(pos.tolist())
    touched = set(grad.abs().sum(1).nonzero().flatten().tolist())
    assert touched == scored


def test_gbce_by_hand():
    target = torch.tensor([2.0, -1.0])
    pooled = torch.tensor([[0.5, float("-inf"), -2.0], [1.0, 0.0, 3.0]])
    alpha = 3 / 99
    beta = alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha)
    rows = [
        -beta * math.log(torch.sigmoid(torch.tensor(s)).item())
        - sum(math.log(1 - torch.sigmoid(torch.tensor(n)).item()) for n in negs)
        for s, negs in ((2.0, (0.5, -2.0)), (-1.0, (1.0, 0.0, 3.0)))
    ]
    expected = sum(rows) / 2 / 4
    assert generalised_bce(target, pooled, 100, 0.75).mean().item() == pytest.approx(
        expected, rel=1e-5
    )
    # t = 0: beta = 1, plain BCE over the target and its negatives.
    plain = generalised_bce(target, pooled, 100, 0.0).mean()
    assert plain.item() == pytest.approx(
        (F.softplus(-target).sum() + F.softplus(pooled).sum()).item() / 2 / 4, rel=1e-6
    )


def test_auto_is_ce_up_to_sampled_above_items_real_items_and_sampled_above():
    # n_items counts [PAD]: 11 ids are 10 real items.
    assert resolve_loss_type("auto", 11, sampled_above_items=10) == "CE"
    assert resolve_loss_type("auto", 12, sampled_above_items=10) == "SampledSoftmax"
    assert resolve_loss_type("gBCE", 10**6, sampled_above_items=10) == "gBCE"
    assert resolve_loss_type("CE", 10**6, sampled_above_items=10) == "CE"
    with pytest.raises(AlphaFuseError, match="sampled_above_items must be a non-negative"):
        resolve_loss_type("auto", 11, sampled_above_items=None)


def test_unknown_loss_is_refused():
    with pytest.raises(AlphaFuseError, match="loss_type must be one of"):
        NextItemLoss("MSE", 10)
    with pytest.raises(AlphaFuseError, match="ce_chunk_size|chunk_size must be a positive"):
        NextItemLoss("CE", 10, ce_chunk_size=0)
    with pytest.raises(AlphaFuseError, match="gbce_t must lie in"):
        NextItemLoss("gBCE", 10, gbce_t=2)
