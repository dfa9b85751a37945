"""The results table (benchmarks/quality/results.py): runs are appended to its CSV as they finish, an
older file keeps its rows, and the script trains and tabulates models at their defaults."""

import numpy as np
import pytest
from conftest import SLICE
from test_end_to_end import fast_config_file, run_script

from benchmarks.quality.results import compare_to_first
from recbole_alphafuse.benchmark.storage import append_run, read_ranks, read_runs
from recbole_alphafuse.benchmark.training import groups_of_test_examples
from recbole_alphafuse.evaluation import metric_values, paired_test


def test_append_run_writes_a_header_once(tmp_path):
    path = tmp_path / "runs.csv"
    append_run(path, {"model": "IDSASRec", "seed": 2020}, ["model", "seed"])
    append_run(path, {"model": "IDSASRec", "seed": 2021}, ["model", "seed"])
    assert path.read_text().splitlines() == ["model,seed", "IDSASRec,2020", "IDSASRec,2021"]


def test_a_file_with_fewer_columns_gains_the_new_ones(tmp_path):
    path = tmp_path / "runs.csv"
    append_run(
        path,
        {"model": "AlphaFuseSASRec", "seed": 2020, "ndcg@10": 0.05},
        ["model", "seed", "ndcg@10"],
    )
    fields = ["model", "seed", "best_epoch", "ndcg@10"]
    append_run(
        path, {"model": "AlphaFuseSASRec", "seed": 2021, "best_epoch": 7, "ndcg@10": 0.06}, fields
    )
    runs = read_runs(path)
    assert list(runs[0]) == ["model", "seed", "ndcg@10", "best_epoch"]
    assert runs == [
        {"model": "AlphaFuseSASRec", "seed": "2020", "ndcg@10": "0.05", "best_epoch": ""},
        {"model": "AlphaFuseSASRec", "seed": "2021", "ndcg@10": "0.06", "best_epoch": "7"},
    ]


def test_a_header_without_rows_is_kept(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("model,seed\r\n")
    append_run(path, {"model": "IDSASRec", "seed": 2020}, ["model", "seed"])
    assert path.read_text().splitlines() == ["model,seed", "IDSASRec,2020"]


def test_the_results_script_trains_each_model_and_seed_once_and_tabulates_them(slice_root, workdir):
    grouped = workdir / "grouped.yaml"
    grouped.write_text("group_metrics: True\n")
    config_files = [str(fast_config_file(workdir, slice_root)), str(grouped)]
    args = [
        *("--datasets", SLICE, "--models", "IDSASRec", "--seeds", "7", "--jobs", "1"),
        *("--config_files", *config_files),
        *("--metrics", "ndcg@10", "hit@10", "--out", str(workdir / "table")),
    ]
    result = run_script("benchmarks/quality/results.py", args, workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = read_runs(workdir / "table.csv")
    assert [(r["model"], r["seed"]) for r in runs] == [("IDSASRec", "7")]
    assert float(runs[0]["ndcg@10"]) <= float(runs[0]["hit@10"])
    table = (workdir / "table.md").read_text()
    assert f"| IDSASRec | 1 | {float(runs[0]['ndcg@10']):.4f} ± 0.0000 |" in table
    assert runs[0]["resumed_epoch"] == "" and not (workdir / "table.runs").exists()
    # The run's test ranks are kept for the paired comparisons, and give its metric back.
    (record,) = read_ranks(workdir / "table.ranks.jsonl")
    assert (record["model"], record["seed"], record["split"]) == ("IDSASRec", 7, "test")
    ndcg = metric_values(record["ranks"], "ndcg@10").mean()
    assert ndcg == pytest.approx(float(runs[0]["ndcg@10"]), abs=1e-4)
    # The test examples' groups, found again from the dataset: the same users in the same
    # order, and tail items in the share the run measured.
    groups = groups_of_test_examples(SLICE, "IDSASRec", config_files)
    assert np.array_equal(groups["users"], record["users"])
    assert groups["tail_item"].mean() == pytest.approx(float(runs[0]["tail_item/share"]), abs=1e-4)
    # Run again: the CSV already holds that run, nothing is trained.
    result = run_script("benchmarks/quality/results.py", args, workdir)
    assert "0 runs to do (1 already in" in result.stdout
    assert len(read_runs(workdir / "table.csv")) == 1
    # Another table that takes that run from the first: tabulated, neither trained nor copied.
    joined = [*args[: args.index("--out")], "--out", str(workdir / "joined")]
    result = run_script(
        "benchmarks/quality/results.py", [*joined, "--runs_from", str(workdir / "table")], workdir
    )
    assert "0 runs to do (1 already in" in result.stdout, result.stderr[-3000:]
    assert (
        f"| IDSASRec | 1 | {float(runs[0]['ndcg@10']):.4f} ± 0.0000 |"
        in (workdir / "joined.md").read_text()
    )
    assert not (workdir / "joined.csv").exists()
    result = run_script(
        "benchmarks/quality/results.py", [*joined, "--runs_from", str(workdir / "none")], workdir
    )
    assert result.returncode == 2 and "--runs_from" in result.stderr


def test_each_model_is_compared_with_the_first_on_the_seeds_both_ran_with_holms_correction():
    rng = np.random.default_rng(3)
    users = list(range(300))
    base = rng.integers(0, 30, 300)
    better = np.where(rng.random(300) < 0.4, 0, base)
    ranks = {
        ("D", "R", 1): (users, base),
        ("D", "R", 2): (users, base),
        ("D", "Better", 1): (users, better),  # seed 2 missing: compared on seed 1 alone
        ("D", "Same", 1): (users, rng.permutation(base)),
        ("D", "Same", 2): (users, rng.permutation(base)),
    }
    comparisons = compare_to_first(ranks, ["D"], ["R", "Better", "Same"], [1, 2], "ndcg@10")
    test, holm_p, significant = comparisons["D", "Better"]
    assert test == paired_test([(users, better)], [(users, base)], "ndcg@10")
    assert significant and holm_p == pytest.approx(min(1.0, 2 * test.permutation_pvalue))
    assert not comparisons["D", "Same"][2]
    assert ("D", "R") not in comparisons


def test_a_group_metric_compares_the_models_on_the_groups_examples_only():
    rng = np.random.default_rng(4)
    users = np.arange(400)
    tail = rng.random(400) < 0.3
    groups = {"D": {"users": users, "tail_item": tail, "tail_user": np.ones(400, dtype=bool)}}
    base = rng.integers(0, 30, 400)
    tail_better = np.where(tail, 0, base)  # better on every tail item, the same on the others
    ranks = {
        ("D", "R", 1): (users, base),
        ("D", "TailBetter", 1): (users, tail_better),
        ("D", "OtherUsers", 1): (users[::-1], base),  # ranked other examples: not compared
    }
    models = ["R", "TailBetter", "OtherUsers"]
    tail_test = compare_to_first(ranks, ["D"], models, [1], "tail_item/ndcg@10", groups)
    head_test = compare_to_first(ranks, ["D"], models, [1], "head_item/ndcg@10", groups)
    expected = paired_test(
        [(users[tail], tail_better[tail])], [(users[tail], base[tail])], "ndcg@10"
    )
    assert tail_test["D", "TailBetter"][0] == expected and tail_test["D", "TailBetter"][2]
    head = head_test["D", "TailBetter"][0]
    assert head.mean == 0 and head.n == (~tail).sum()
    assert ("D", "OtherUsers") not in tail_test


def test_an_unknown_paired_metric_is_refused_before_any_run(workdir):
    args = ["--datasets", "any", "--models", "IDSASRec", "--out", str(workdir / "table")]
    result = run_script(
        "benchmarks/quality/results.py", [*args, "--paired", "tail/ndcg@10"], workdir
    )
    assert result.returncode == 2 and "--paired tail/ndcg@10: give a metric@k" in result.stderr
    assert not (workdir / "table.csv").exists()
