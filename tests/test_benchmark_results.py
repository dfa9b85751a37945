"""The results table's CSV: runs are appended as they finish and an older file keeps its rows."""

from recbole_alphafuse.benchmark import append_run, read_runs


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
