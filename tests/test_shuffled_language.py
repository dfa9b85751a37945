"""The shuffled-language control: the same vectors and files, no item keeping its own vector."""

import numpy as np
import pytest

from benchmarks.quality.shuffled_language import one_cycle, write_control


@pytest.mark.parametrize("count", [2, 3, 10, 257])
def test_one_cycle_moves_every_item_and_visits_all(count):
    permutation = one_cycle(count, seed=7)
    assert sorted(permutation) == list(range(count))
    assert not np.any(permutation == np.arange(count))
    item, seen = 0, set()
    while item not in seen:
        seen.add(item)
        item = permutation[item]
    assert len(seen) == count


def test_control_dataset_keeps_the_files_and_permutes_the_vectors(tmp_path):
    source = tmp_path / "toy-cold"
    source.mkdir()
    (source / "toy-cold.train.inter").write_text("user_id:token\titem_id:token\n1\ta\n")
    (source / "toy-cold.yaml").write_text("benchmark_filename: [train, valid, test]\n")
    rows = {"a": "0.1 0.2", "b": "0.3 0.4", "c": "0.5 0.6", "d": "0.7 0.8"}
    (source / "toy-cold.itememb").write_text(
        "iid:token\titem_emb:float_seq\n" + "".join(f"{i}\t{v}\n" for i, v in rows.items())
    )
    target = write_control(tmp_path, "toy-cold", seed=3)
    assert sorted(p.name for p in target.iterdir()) == [
        "toy-cold-shuffled.itememb",
        "toy-cold-shuffled.train.inter",
        "toy-cold-shuffled.yaml",
    ]
    assert (target / "toy-cold-shuffled.train.inter").read_text() == (
        source / "toy-cold.train.inter"
    ).read_text()
    header, *lines = (target / "toy-cold-shuffled.itememb").read_text().splitlines()
    assert header == "iid:token\titem_emb:float_seq"
    shuffled = dict(line.split("\t") for line in lines)
    assert list(shuffled) == list(rows)
    assert sorted(shuffled.values()) == sorted(rows.values())
    assert all(shuffled[item] != rows[item] for item in rows)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_dataset_without_vectors_is_one_error_and_writes_nothing(tmp_path):
    (tmp_path / "toy").mkdir()
    with pytest.raises(SystemExit, match="toy.itememb not found: run `python -m recbole_alphafuse"):
        write_control(tmp_path, "toy", seed=0)
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
