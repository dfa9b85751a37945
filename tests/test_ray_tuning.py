"""Hyperparameter search with Ray Tune (run_hyper.py --tool=Ray): search-space file, trials on a
local Ray cluster, selection on validation, exported results; the benchmark's trainings as Ray
tasks."""

import csv
import importlib.util
import math
import os
import subprocess
import sys

import pytest
from conftest import SLICE
from test_end_to_end import REPO, fast_config_file, run_script

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.ray_tuning import (
    VALID_SCORE,
    ray_search_space,
    read_search_space,
    search_algorithm,
)

# Ray Tune is the optional `ray` extra (part of the `test` extra).
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray Tune is not installed (the ray extra)"
)


@needs_ray
def test_search_space_file_reads_as_recbole_hyperopt_does(tmp_path):
    params = tmp_path / "space.hyper"
    params.write_text(
        "null_dim choice [8,16]\n\nid_init choice ['normal','zeros']\n"
        "learning_rate loguniform -8, -4\ndropout uniform 0.1,0.5\nn quniform 2,10,2\n"
    )
    space = read_search_space(params)
    assert space == {
        "null_dim": ("choice", [8, 16]),
        "id_init": ("choice", ["normal", "zeros"]),
        "learning_rate": ("loguniform", [-8.0, -4.0]),
        "dropout": ("uniform", [0.1, 0.5]),
        "n": ("quniform", [2.0, 10.0, 2.0]),
    }
    learning_rate = ray_search_space(space, "random")["learning_rate"]
    # hyperopt's loguniform(-8, -4): the value's log is uniform on [-8, -4].
    assert (learning_rate.lower, learning_rate.upper) == pytest.approx((math.exp(-8), math.exp(-4)))
    with pytest.raises(AlphaFuseError, match="'choice' parameters only"):
        ray_search_space(space, "exhaustive")


@needs_ray
def test_bayes_search_draws_inside_the_space(tmp_path):
    params = tmp_path / "space.hyper"
    params.write_text("null_dim choice [8,16]\nlearning_rate loguniform -8,-4\n")
    searcher = search_algorithm("bayes", "max", seed=7)
    searcher.set_search_properties(
        VALID_SCORE, "max", ray_search_space(read_search_space(params), "bayes")
    )
    for trial in range(5):
        draw = searcher.suggest(str(trial))
        assert draw["null_dim"] in (8, 16)
        assert math.exp(-8) <= draw["learning_rate"] <= math.exp(-4)


@pytest.mark.parametrize(
    "line, problem",
    [("null_dim choice 8", "do not fit kind 'choice'"), ("lr gaussian 1,2", "unknown kind")],
)
def test_bad_search_space_line_is_named(tmp_path, line, problem):
    params = tmp_path / "space.hyper"
    params.write_text(f"null_dim choice [8]\n{line}\n")
    with pytest.raises(AlphaFuseError, match=f"line 2 .*{problem}"):
        read_search_space(params)


@needs_ray
def test_ray_runs_every_trial_and_picks_the_best_validation_score(slice_root, workdir):
    params = workdir / "params.hyper"
    params.write_text("null_dim choice [8,16]\n")
    output = workdir / "hyper.txt"
    result = run_script(
        "run_hyper.py",
        [
            "--tool=Ray",
            "--model=AlphaFuseSASRec",
            f"--dataset={SLICE}",
            f"--config_files={fast_config_file(workdir, slice_root)}",
            f"--params_file={params}",
            f"--output_file={output}",
            "--cpus_per_trial=1",
        ],
        workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output.with_suffix(".csv"), encoding="utf-8") as f:
        trials = list(csv.DictReader(f))
    assert sorted(int(t["null_dim"]) for t in trials) == [8, 16]
    for trial in trials:
        assert float(trial["valid_score"]) == float(trial["valid/mrr@10"])  # RecBole's valid_metric
        assert "test/ndcg@10" in trial
    best = max(trials, key=lambda t: float(t["valid_score"]))
    assert f"best params:  {{'null_dim': {best['null_dim']}}}" in result.stdout
    text = output.read_text()
    assert "null_dim:8" in text and "null_dim:16" in text and "Test result:" in text
    # Trials run side by side: each keeps its best checkpoint in a folder of its own.
    assert len(list((workdir / "saved").glob("*/AlphaFuseSASRec-*.pth"))) == 2


@needs_ray
def test_the_benchmark_trains_the_same_in_ray_tasks_as_in_local_processes(slice_root, workdir):
    spaces = workdir / "spaces"
    spaces.mkdir()
    (spaces / "IDSASRec.hyper").write_text("learning_rate choice [0.003]\n")
    runs, ranks = {}, {}
    for tool in ("Hyperopt", "Ray"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "recbole_alphafuse",
                "benchmark",
                *("--datasets", SLICE, "--models", "IDSASRec", "--trials", "1", "--seeds", "7"),
                *("--config_files", str(fast_config_file(workdir, slice_root))),
                *("--spaces", str(spaces), "--metrics", "ndcg@10", "--threads", "1"),
                *("--tool", tool, "--out", str(workdir / tool)),
                # The trial's setting is tested whatever its margin over the defaults.
                *("--margin", "-1"),
            ],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout, installed or not
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        with open(workdir / f"{tool}.csv", newline="") as f:
            runs[tool] = [
                (r["stage"], r["seed"], r["best_valid_score"], r["ndcg@10"])
                for r in csv.DictReader(f)
            ]
        ranks[tool] = (workdir / f"{tool}.ranks.jsonl").read_text()
    # The one setting's trial, then its tested run: trained alike, ranking alike.
    assert [stage for stage, *_ in runs["Ray"]] == ["trial", "tuned"]
    assert runs["Ray"] == runs["Hyperopt"] and ranks["Ray"] == ranks["Hyperopt"]


@pytest.mark.parametrize("tool", ["Hyperopt", "Ray"])
def test_missing_search_space_file_is_one_error_line(tool, workdir):
    result = run_script("run_hyper.py", [f"--tool={tool}", "--params_file=absent.hyper"], workdir)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: --params_file absent.hyper")
    assert "Traceback" not in result.stderr
