"""Item text -> .itememb: the embed command, its alignment and its atomic write."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data import itememb
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.embed import embed_dataset, encode_texts, item_texts
from recbole_alphafuse.data.prepare import bundled_dataset_dir, copy_bundled_dataset


def test_itememb_holds_exactly_the_interacted_items(slice_root):
    folder = slice_root / SLICE
    inter, _ = read_atomic(folder / f"{SLICE}.inter", usecols=["item_id"])
    vectors, types = read_atomic(folder / f"{SLICE}.itememb")
    assert types == {"iid": "token", "item_emb": "float_seq"}
    assert sorted(vectors["iid"]) == sorted(set(inter["item_id"]))
    matrix = np.array([row.split(" ") for row in vectors["item_emb"]], dtype=np.float64)
    assert matrix.shape == (len(vectors), 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_item_text_names_each_field(slice_root):
    tokens, texts = item_texts(slice_root / SLICE, SLICE)
    toy_story = texts[tokens.index("1")]
    assert (
        toy_story
        == "movie title: Toy Story. release year: 1995. class: Animation Children's Comedy"
    )
    _, titles = item_texts(slice_root / SLICE, SLICE, fields=["movie_title"])
    assert titles[tokens.index("1")] == "movie title: Toy Story"


def test_similar_titles_get_closer_vectors():
    vectors = encode_texts(
        ["Toy Story 2 (animation)", "Toy Story (animation)", "Schindler's List (war drama)"],
        show_progress=False,
    )
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_cli_prepares_bundled_ml100k_and_writes_itememb(tmp_path, monkeypatch):
    source = bundled_dataset_dir("ml-100k")
    target = tmp_path / "ml-100k"
    copy_bundled_dataset("ml-100k", target)
    for suffix in ("inter", "item", "user"):
        assert (target / f"ml-100k.{suffix}").read_bytes() == (
            source / f"ml-100k.{suffix}"
        ).read_bytes()
    # Embedding all 1682 movies is the main job's work; here the CLI runs on the 60-user slice.
    inter = (target / "ml-100k.inter").read_text().splitlines()
    (target / "ml-100k.inter").write_text("\n".join(inter[:400]) + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recbole_alphafuse",
            "embed",
            "--dataset",
            "ml-100k",
            "--data-path",
            str(tmp_path),
            "--fields",
            "movie_title,class",
            "--batch-size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    vectors, _ = read_atomic(target / "ml-100k.itememb")
    assert len(vectors) == len({line.split("\t")[1] for line in inter[1:400]})


def test_empty_item_text_is_refused(data_copy):
    _, folder = data_copy
    item_file = folder / f"{SLICE}.item"
    lines = item_file.read_text().splitlines()
    token = lines[1].split("\t")[0]
    lines[1] = "\t".join([token, "", "", ""])
    item_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(AlphaFuseError, match=rf"1 items have empty text.*'{token}'"):
        embed_dataset(folder, SLICE, show_progress=False)


def test_item_missing_from_item_file_is_refused(data_copy):
    _, folder = data_copy
    item_file = folder / f"{SLICE}.item"
    lines = item_file.read_text().splitlines()
    item_file.write_text("\n".join([lines[0]] + lines[2:]) + "\n")
    with pytest.raises(
        AlphaFuseError, match=r"1 items of ml-slice.inter are missing from ml-slice.item"
    ):
        item_texts(folder, SLICE)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "x.itememb"

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(itememb.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        itememb.write_itememb(target, ["a", "b"], np.ones((2, 3)))
    assert list(tmp_path.iterdir()) == []


def test_non_finite_vectors_are_not_written(tmp_path):
    with pytest.raises(AlphaFuseError, match="NaN/inf"):
        itememb.write_itememb(tmp_path / "x.itememb", ["a"], np.array([[np.nan, 1.0]]))
    assert list(tmp_path.iterdir()) == []
