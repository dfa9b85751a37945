"""The results table (benchmarks/quality/results.py): runs are appended to its CSV as they finish, an
older file keeps its rows, and the script trains and tabulates models at their defaults."""

from conftest import SLICE
from test_end_to_end import fast_config_file, run_script

from recbole_alphafuse.benchmark.storage import append_run, read_runs


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
    args = [
        *("--datasets", SLICE, "--models", "IDSASRec", "--seeds", "7", "--jobs", "1"),
        *("--config_files", str(fast_config_file(workdir, slice_root))),
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
    # Run again: the CSV already holds that run, nothing is trained.
    result = run_script("benchmarks/quality/results.py", args, workdir)
    assert "0 runs to do (1 already in" in result.stdout
    assert len(read_runs(workdir / "table.csv")) == 1
