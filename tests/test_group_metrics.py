"""Long-tail group metrics: RecBole's metric values per group of examples, from the same top-k."""

from functools import partial
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SLICE, build_model
from recbole.evaluator.collector import DataStruct
from recbole.evaluator.metrics import MRR, NDCG, Hit, Precision, Recall
from scipy import stats

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.evaluation import (
    GroupCollector,
    GroupReference,
    PairedTest,
    holm,
    metric_values,
    paired_difference,
    paired_test,
    single_target_metrics,
    standard_errors,
    tail_items,
    target_ranks,
    users_to_detect,
)
from recbole_alphafuse.ranking import TopItems
from recbole_alphafuse.registry import get_trainer

RECBOLE_METRICS = {"hit": Hit, "recall": Recall, "ndcg": NDCG, "mrr": MRR, "precision": Precision}


def test_target_ranks_follow_topk_including_ties():
    scores = torch.tensor(
        [
            [-np.inf, 0.9, 0.5, 0.1, 0.3],
            [-np.inf, 0.2, 0.2, 0.2, 0.9],
            [-np.inf, 0.1, 0.2, 0.3, 0.4],
        ]
    )
    targets = torch.tensor([2, 3, 1])
    ranks = target_ranks(scores, targets, depth=3)
    _, top = torch.topk(scores, 3, dim=-1)
    expected = [row.tolist().index(t) if t in row else 3 for row, t in zip(top, targets.tolist())]
    assert ranks.tolist() == expected
    assert ranks[0] == 1 and ranks[2] == 3  # second best; absent from the top 3


def test_single_target_metrics_equal_recboles_metrics(monkeypatch):
    monkeypatch.setattr(np, "float", np.float64, raising=False)  # as RecBole's Config does
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 25, size=200)  # 20 = "not in the top 20"
    depth = 20
    # RecBole's evaluator input: the hit matrix of each row's top 20, then the row's positives.
    hits = torch.zeros((len(ranks), depth + 1), dtype=torch.int)
    inside = ranks < depth
    hits[np.flatnonzero(inside), ranks[inside]] = 1
    hits[:, depth] = 1
    struct = DataStruct()
    struct.set("rec.topk", hits)
    topk = [5, 10, 20]
    ours = single_target_metrics(np.minimum(ranks, depth), list(RECBOLE_METRICS), topk)
    for name, metric_class in RECBOLE_METRICS.items():
        theirs = metric_class({"topk": topk, "metric_decimal_place": 6}).calculate_metric(struct)
        for k in topk:
            assert round(ours[f"{name}@{k}"], 6) == theirs[f"{name}@{k}"]


def test_standard_errors_are_the_spread_of_the_examples_over_sqrt_n():
    errors = standard_errors([0, 1, 20], ["hit", "ndcg"], [10])
    # hit: values 1, 1, 0; sample standard deviation sqrt(1/3), over sqrt(3).
    assert errors["stderr/hit@10"] == pytest.approx(1 / 3)
    ndcg = [1.0, 1 / np.log2(3), 0.0]
    assert errors["stderr/ndcg@10"] == pytest.approx(np.std(ndcg, ddof=1) / np.sqrt(3))
    assert standard_errors([4], ["hit"], [10]) == {"stderr/hit@10": 0.0}


def test_the_paired_difference_averages_each_users_seeds_then_compares_user_by_user():
    users = [3, 1, 2]
    model = [(users, [0, 20, 1]), (users, [0, 20, 20])]  # two seeds
    reference = [(users, [1, 0, 20])]
    second = 1 / np.log2(3)  # NDCG of a target ranked second
    # Per user: the model's seeds averaged, minus the reference's.
    differences = np.array([1 - second, 0 - 1, second / 2 - 0])
    mean, error, n = paired_difference(model, reference, "ndcg@10")
    assert n == 3 and mean == pytest.approx(differences.mean())
    assert error == pytest.approx(differences.std(ddof=1) / np.sqrt(3))
    assert paired_difference(model, reference, "hit@1")[0] == pytest.approx((1 - 0 - 1) / 3)
    # The same runs on both sides: no difference and no error.
    assert paired_difference(model, model, "mrr@10") == (0.0, 0.0, 3)
    # Other users, or the same users in another order, cannot be paired; nor a group metric.
    assert paired_difference(model, [([3, 2, 1], [1, 20, 0])], "ndcg@10") is None
    assert paired_difference(model, reference, "tail_item/ndcg@10") is None
    assert paired_difference([], reference, "ndcg@10") is None


def test_the_paired_permutation_test_is_exact_on_few_users_and_the_t_test_is_scipys():
    users = [1, 2, 3]
    # Each user hit by the model and missed by the reference: of the 2^3 swaps of each user's
    # two values, only "none" and "all" give a mean difference as large, so p = 2 / 8.
    test = paired_test([(users, [0, 0, 0])], [(users, [20, 20, 20])], "hit@10")
    assert (test.mean, test.n, test.permutation_pvalue) == (1.0, 3, pytest.approx(0.25))
    # Identical runs: no evidence of a difference at all.
    same = paired_test([(users, [0, 5, 20])], [(users, [0, 5, 20])], "ndcg@10")
    assert (same.t_pvalue, same.permutation_pvalue) == (1.0, 1.0)
    # Many users: the t-test is scipy's on the users' values, and both tests see a real gap and
    # no gap where there is none.
    rng = np.random.default_rng(0)
    many = list(range(400))
    reference_ranks = rng.integers(0, 30, 400)
    better_ranks = np.where(rng.random(400) < 0.3, 0, reference_ranks)
    better = paired_test([(many, better_ranks)], [(many, reference_ranks)], "ndcg@10")
    expected = stats.ttest_rel(
        metric_values(better_ranks, "ndcg@10"), metric_values(reference_ranks, "ndcg@10")
    )
    assert better.t_pvalue == pytest.approx(expected.pvalue)
    assert better.t_pvalue < 1e-6 and better.permutation_pvalue <= 1 / 1000
    noise = paired_test(
        [(many, rng.permutation(reference_ranks))], [(many, reference_ranks)], "ndcg@10"
    )
    assert noise.permutation_pvalue > 0.01 and noise.t_pvalue > 0.01


def test_holms_correction_by_hand():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1, each at least the one before: 0.03, 0.06, 0.06.
    adjusted, significant = holm([0.01, 0.04, 0.03])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert significant == [True, False, False]
    assert holm([]) == ([], [])


def test_tail_items_by_ratio_and_by_threshold():
    popularity = np.array([0, 5, 1, 1, 9, 3, 0, 2, 7, 4, 1])  # item 0 is [PAD]
    tail = tail_items(popularity, ratio=0.8)
    assert not tail[0] and tail.sum() == 8
    assert set(np.flatnonzero(~tail)) == {0, 4, 8}  # the two most popular stay head
    tail = tail_items(popularity, threshold=1)
    assert set(np.flatnonzero(tail)) == {2, 3, 6, 10}


@pytest.mark.parametrize("blocked", [False, True])
def test_coverage_is_the_share_of_real_items_in_some_users_top_k(blocked):
    reference = SimpleNamespace(
        tail_item=torch.zeros(6, dtype=torch.bool), seq_len_field="length", tail_user_threshold=5
    )
    reference.groups = partial(GroupReference.groups, reference)
    config = {"metrics": ["NDCG"], "topk": [1, 2], "metric_decimal_place": 4, "USER_ID_FIELD": "u"}
    collector = GroupCollector(reference, config)
    # Top 1: items 1 and 3; top 2: items 1, 2 and 3, of the 5 real items.
    scores = torch.tensor([[-np.inf, 0.9, 0.8, 0.1, 0, 0], [-np.inf, 0.1, 0.2, 0.9, 0, 0]])
    if blocked:
        best = torch.topk(scores, 2, dim=-1)
        scores = TopItems(best.indices, best.values)
    interaction = {"u": torch.tensor([1, 2]), "length": torch.tensor([3, 4])}
    collector.collect(interaction, scores, torch.tensor([1, 3]))
    result = collector.result()
    assert result["coverage@1"] == 0.4 and result["coverage@2"] == 0.6


def test_groups_partition_the_overall_metrics(slice_root, workdir):
    config, model, train, valid = build_model(
        slice_root,
        "AlphaFuseSASRec",
        group_metrics=True,
        MAX_ITEM_LIST_LENGTH=50,
        tail_user_threshold=40,
    )
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, saved=False, show_progress=False)
    result = trainer.evaluate(valid, load_best_model=False)
    for kind in ("item", "user"):
        tail, head = f"tail_{kind}", f"head_{kind}"
        assert result[f"{tail}/share"] + result[f"{head}/share"] == pytest.approx(1.0, abs=1e-4)
        for metric in ("ndcg@10", "hit@10", "mrr@10"):
            combined = (
                result[f"{tail}/share"] * result[f"{tail}/{metric}"]
                + result[f"{head}/share"] * result[f"{head}/{metric}"]
            )
            assert combined == pytest.approx(result[metric], abs=2e-4)
    # A hit is 0 or 1: its standard error is sqrt(p (1 - p) / (n - 1)) over the n examples.
    n, hit = len(valid.dataset), result["hit@10"]
    assert result["stderr/hit@10"] == pytest.approx(np.sqrt(hit * (1 - hit) / (n - 1)), abs=2e-4)
    assert result["stderr/ndcg@10"] > 0


def test_an_evaluation_asked_for_its_ranks_leaves_those_that_make_its_metrics(slice_root, workdir):
    config, model, train, valid = build_model(slice_root, "SASRec")  # no group metrics
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, saved=False, show_progress=False)
    trainer.evaluate(valid, load_best_model=False)
    assert trainer.evaluated_ranks is None  # not asked: evaluation does no extra work
    trainer.record_ranks = True
    result = trainer.evaluate(valid, load_best_model=False)
    users, ranks = trainer.evaluated_ranks
    assert len(users) == len(ranks) == len(valid.dataset)
    assert sorted(users) == sorted(valid.dataset.inter_feat[config["USER_ID_FIELD"]].tolist())
    for metric in ("ndcg@10", "hit@10", "mrr@10"):
        assert metric_values(ranks, metric).mean() == pytest.approx(result[metric], abs=1e-4)
    # Not a sequential model (several targets per user): no ranks, and none left over.
    config, model, train, valid = build_model(slice_root, "BPR")
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.record_ranks = True
    trainer.evaluate(valid, load_best_model=False)
    assert trainer.evaluated_ranks is None


def test_group_metrics_need_training_data_or_a_reference(slice_root, workdir):
    config, model, train, valid = build_model(slice_root, "SASRec", group_metrics=True)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    with pytest.raises(AlphaFuseError, match="set_group_reference"):
        trainer.evaluate(valid, load_best_model=False)
    trainer.set_group_reference(train)
    assert "tail_item/ndcg@10" in trainer.evaluate(valid, load_best_model=False)


def test_group_metrics_refuse_non_sequential_models(slice_root, workdir):
    config, model, train, _ = build_model(slice_root, "BPR", group_metrics=True)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    with pytest.raises(AlphaFuseError, match="sequential"):
        trainer.set_group_reference(train)


def test_tail_items_by_their_interactions_in_the_whole_dataset_as_llm_esr_counts(
    slice_root, workdir
):
    config, _, train, _ = build_model(
        slice_root,
        "SASRec",
        group_metrics=True,
        tail_item_popularity="interactions",
        tail_item_threshold=3,
    )
    reference = GroupReference(config, train.dataset)
    # Every line of the slice's .inter file counts, the validation and test targets included.
    inter = pd.read_csv(slice_root / SLICE / f"{SLICE}.inter", sep="\t", dtype=str)
    counts = inter.iloc[:, 1].value_counts()
    tokens = train.dataset.field2id_token[train.dataset.iid_field]
    expected = [counts.get(token, 0) <= 3 for token in tokens[1:]]
    assert reference.tail_item[1:].tolist() == expected
    # Counting training targets instead leaves out each user's validation and test items.
    config["tail_item_popularity"] = "training_targets"
    by_targets = GroupReference(config, train.dataset).tail_item
    assert by_targets.sum() > reference.tail_item.sum()
    config["tail_item_popularity"] = "views"
    with pytest.raises(AlphaFuseError, match="training_targets or interactions"):
        GroupReference(config, train.dataset)


def test_users_to_detect_a_difference_follow_its_standard_error():
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    # A difference of z standard errors is found 80% of the time with the users it was seen on.
    seen = PairedTest(z * 0.001, 0.001, 3000, 0.01, 0.01)
    assert users_to_detect(seen) == pytest.approx(3000, rel=0.005)
    # Half the difference needs four times the users; a larger spread, more.
    assert users_to_detect(seen._replace(mean=z * 0.0005)) == pytest.approx(12000, rel=0.005)
    assert users_to_detect(seen._replace(stderr=0.002)) > 11000
    assert users_to_detect(seen._replace(mean=0.0)) is None
