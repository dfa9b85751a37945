"""Full ranking in blocks: the same top-k and the same ranks as ranking every item at once, on
small tensors, then the same metrics as RecBole's evaluator on the slice."""

import pytest
import torch
from conftest import FAST_CONFIG, Table, build_model
from recbole.evaluator.collector import Collector

from recbole_alphafuse.ranking import TopItemsCollector, blocked_top_items, users_per_ranking_batch
from recbole_alphafuse.registry import get_trainer


@pytest.fixture
def case():
    torch.manual_seed(0)
    query, table = torch.randn(6, 4), Table(torch.randn(23, 4))
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 5])
    items = torch.tensor([3, 22, 7, 1, 11, 12, 0])
    return query, table, (rows, items)


def full_top_items(query, table, history, depth):
    """RecBole's way: every score at once, [PAD] and history at -inf, then topk."""
    scores = query @ table.weight.T
    scores[:, 0] = float("-inf")
    scores[history] = float("-inf")
    return torch.topk(scores, depth, dim=-1)


@pytest.mark.parametrize("block_size", [1, 2, 5, 7, 23, 100])
def test_blocked_top_items_equal_the_top_k_of_all_scores(case, block_size):
    query, table, history = case
    expected = full_top_items(query, table, history, 5)
    top = blocked_top_items(query, table, 23, 5, history, block_size)
    assert torch.equal(top.items, expected.indices)
    assert torch.allclose(top.scores, expected.values)
    # Neither [PAD] nor a history item is ever recommended.
    for row, item in zip(*history):
        assert item not in top.items[row]
    assert (top.items != 0).all()


def test_blocked_ranking_never_scores_more_than_a_block(case):
    query, table, history = case
    scored = []

    class Recording(Table):
        def forward(self, ids):
            scored.append(len(ids))
            return super().forward(ids)

    blocked_top_items(query, Recording(table.weight), 23, 5, history, 5)
    assert scored == [5, 5, 5, 5, 3]


@pytest.fixture
def tied_case():
    """Integer vectors: every score is exact whatever the order of summation, and many tie."""
    generator = torch.Generator().manual_seed(1)
    query = torch.randint(-2, 3, (6, 3), generator=generator).float()
    table = Table(torch.randint(-2, 3, (23, 3), generator=generator).float())
    history = torch.tensor([0, 0, 1, 2, 2, 2, 5]), torch.tensor([3, 22, 7, 1, 11, 12, 9])
    # Several positives per row, one row with none.
    positives = torch.tensor([0, 0, 1, 1, 1, 3, 4, 4, 5]), torch.tensor([5, 4, 2, 6, 9, 8, 2, 6, 1])
    return query, table, history, positives


@pytest.mark.parametrize("block_size", [1, 4, 7, 23])
def test_blocked_ranking_counts_the_items_above_and_level_with_each_positive(tied_case, block_size):
    query, table, history, (rows, items) = tied_case
    scores = query @ table.weight.T
    scores[:, 0] = float("-inf")
    scores[history] = float("-inf")
    own = scores[rows, items].unsqueeze(1)
    others = scores[rows].clone()
    others[torch.arange(len(rows)), items] = float("-inf")
    top = blocked_top_items(query, table, 23, 5, history, block_size, (rows, items))
    assert torch.equal(top.positives_above, (others > own).sum(1))
    assert torch.equal(top.positives_level, (others == own).sum(1))
    assert (top.positives_level > 0).any()  # the case has ties
    assert torch.equal(top.ranked, torch.isfinite(scores).sum(1))
    assert top.ranked.tolist() == [20, 21, 19, 22, 22, 21]


def test_the_collector_gives_recboles_mean_ranks_from_the_top_items(tied_case):
    query, table, history, positives = tied_case
    config = {"metrics": ["GAUC"], "topk": [5], "eval_args": {"mode": "full"}, "device": "cpu"}
    config["metric_decimal_place"] = 4
    scores = query @ table.weight.T
    scores[:, 0] = float("-inf")
    scores[history] = float("-inf")
    structs = []
    for collector, batch_scores in (
        (Collector(config), scores),
        (TopItemsCollector(config), blocked_top_items(query, table, 23, 5, history, 4, positives)),
    ):
        collector.eval_batch_collect(batch_scores, None, *positives)
        structs.append(collector.get_data_struct())
    assert torch.equal(structs[0].get("rec.meanrank"), structs[1].get("rec.meanrank"))


def test_the_collector_fills_recboles_topk_from_the_top_items(case):
    query, table, history = case
    config = {"metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision", "ItemCoverage"]}
    config.update(topk=[5], eval_args={"mode": "full"}, metric_decimal_place=4, device="cpu")
    scores = query @ table.weight.T
    scores[:, 0] = float("-inf")
    scores[history] = float("-inf")
    # Several positives per row, some inside and some outside the top 5, one row with none.
    top = torch.topk(scores, 5, dim=-1).indices
    positive_u = torch.tensor([0, 0, 1, 1, 1, 3, 4, 4])
    positive_i = torch.tensor([int(top[0, 2]), 4, int(top[1, 0]), int(top[1, 4]), 9, 8, 2, 6])
    structs = []
    for collector, batch_scores in (
        (Collector(config), scores),
        (TopItemsCollector(config), blocked_top_items(query, table, 23, 5, history, 4)),
    ):
        collector.eval_batch_collect(batch_scores, None, positive_u, positive_i)
        structs.append(collector.get_data_struct())
    for entry in ("rec.topk", "rec.items"):
        assert torch.equal(structs[0].get(entry), structs[1].get(entry))


def test_models_ranked_all_at_once_rank_fewer_users_on_large_catalogues():
    config = {"eval_batch_size": 4096, "ranking_block_size": 4096}
    assert users_per_ranking_batch(config, 2000) == 4096
    assert users_per_ranking_batch(config, 1_000_000) == 16
    assert users_per_ranking_batch(config, 10**9) == 1
    assert users_per_ranking_batch({**config, "ranking_block_size": None}, 10**9) == 4096


# RecBole 1.2.1's ItemCoverage and AveragePopularity fail in its own Collector (it calls .cpu() on
# the item count it stores); the top items they read are compared above.
METRICS = ["Recall", "MRR", "NDCG", "Hit", "Precision", "MAP", "GAUC"]


@pytest.mark.parametrize("name", ["AlphaFuseSASRec", "IDSASRec", "AlphaFuseGRU4Rec"])
def test_blocked_evaluation_gives_recboles_metrics_to_the_last_digit(slice_root, workdir, name):
    config, model, train_data, valid_data = build_model(
        slice_root,
        name,
        {**FAST_CONFIG, "null_thres": None},
        metrics=METRICS,
        topk=[5, 10, 50],
        group_metrics=True,
        metric_decimal_place=8,
        epochs=3,
    )
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train_data, saved=False, show_progress=False)
    results = {}
    for block_size in (None, 7, 100, 4096):
        config["ranking_block_size"] = block_size
        results[block_size] = trainer.evaluate(valid_data, load_best_model=False)
    reference = results.pop(None)
    # Targets inside the top lists, so that equal metrics mean equal rankings.
    assert reference["hit@50"] > 0 and reference["mrr@50"] > 0 and "tail_item/ndcg@10" in reference
    assert 0.5 < reference["gauc"] < 1
    for result in results.values():
        assert result == reference
