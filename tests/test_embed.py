"""Item text or vectors made elsewhere -> .itememb: the embed command, its alignment and its
atomic write."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.data import itememb
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.byo import embed_from_file
from recbole_alphafuse.data.embed import embed_dataset, encode_texts, item_texts
from recbole_alphafuse.data.prepare import bundled_dataset_dir, copy_bundled_dataset
from recbole_alphafuse.data.split import write_benchmark_dataset


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
        check=False,
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
    lines[1] = f"{token}\t\t\t"
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


# Bring-your-own vectors: a tiny dataset whose items are first seen in the order c, a, b.
BYO_TOKENS = ["a", "b", "c", "ghost"]
BYO_VECTORS = np.arange(12, dtype=np.float32).reshape(4, 3)


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.inter").write_text(
        "user_id:token\titem_id:token\n" + "".join(f"u\t{item}\n" for item in "cabca")
    )
    return folder


def _vector_file(folder, kind):
    """Write the BYO vectors as ``kind``; returns (file, ids file or None for a dict)."""
    ids = folder / "ids.txt"
    ids.write_text("\n".join(BYO_TOKENS) + "\n")
    as_dict = dict(zip(BYO_TOKENS, BYO_VECTORS.tolist()))
    if kind == "npy":
        path = folder / "v.npy"
        np.save(path, BYO_VECTORS)
    elif kind == "pickle-tensor":
        path = folder / "v.pickle"
        path.write_bytes(pickle.dumps(torch.from_numpy(BYO_VECTORS)))
    elif kind == "pt-dict":
        path = folder / "v.pt"
        torch.save({token: torch.tensor(vector) for token, vector in as_dict.items()}, path)
        return path, None
    else:
        path = folder / "v.pkl"
        path.write_bytes(pickle.dumps(as_dict))
        return path, None
    return path, ids


@pytest.mark.parametrize("kind", ["npy", "pt-dict", "pickle-tensor", "pickle-dict"])
def test_from_file_writes_the_dataset_items_in_order(tiny, kind):
    vectors, ids = _vector_file(tiny.parent, kind)
    main(
        ["embed", "--dataset", "tiny", "--data-path", str(tiny.parent), "--from-file", str(vectors)]
        + (["--ids", str(ids)] if ids else [])
    )
    written, _ = read_atomic(tiny / "tiny.itememb")
    assert written["iid"].tolist() == ["c", "a", "b"]  # "ghost" has no interaction
    matrix = np.array([row.split() for row in written["item_emb"]], dtype=np.float32)
    assert np.array_equal(matrix, BYO_VECTORS[[2, 0, 1]])


def test_from_file_covers_histories_of_benchmark_files(tmp_path):
    folder = tmp_path / "split"
    frame = pd.DataFrame({"user_id": ["u"], "item_id_list": [["b", "c"]], "item_id": ["a"]})
    write_benchmark_dataset(folder, "split", {s: frame for s in ("train", "valid", "test")}, 2)
    vectors, ids = _vector_file(tmp_path, "npy")
    embed_from_file(folder, "split", vectors, ids)
    written, _ = read_atomic(folder / "split.itememb")
    assert written["iid"].tolist() == ["b", "c", "a"]


def _save_npy(array):
    def write(folder):
        np.save(folder / "v.npy", array)
        return folder / "v.npy"

    return write


def _save_pickle(value, name="v.pickle"):
    def write(folder):
        (folder / name).write_bytes(pickle.dumps(value))
        return folder / name

    return write


BYO_ERRORS = {
    "row count": (_save_npy(BYO_VECTORS[:3]), BYO_TOKENS, r"has 3 rows but .* has 4 ids"),
    "duplicate ids": (_save_npy(BYO_VECTORS), ["a", "b", "a", "c"], r"1 item tokens have more"),
    "item without vector": (
        _save_npy(BYO_VECTORS),
        ["a", "b", "x", "y"],
        r"1 items of tiny have no",
    ),
    "not 2-D": (_save_npy(BYO_VECTORS[0]), ["a"], r"shape \(3,\); it must be 2-D"),
    "ragged dict": (
        _save_pickle({"a": [1.0, 2.0], "b": [1.0], "c": [0.0, 1.0]}),
        None,
        r"not numbers of one common length",
    ),
    "NaN": (
        _save_npy(np.where(np.arange(4)[:, None] == 1, np.nan, BYO_VECTORS)),
        BYO_TOKENS,
        r"1 items have NaN/inf vectors .*\['b'\]",
    ),
    "unknown extension": (_save_pickle(BYO_VECTORS, "v.csv"), BYO_TOKENS, r"unknown vector file"),
    "array without ids": (_save_npy(BYO_VECTORS), None, r"pass --ids FILE"),
    "dict with ids": (_save_pickle(dict(zip("abc", BYO_VECTORS))), "abc", r"leave out --ids"),
}


@pytest.mark.parametrize("error", BYO_ERRORS, ids=list(BYO_ERRORS))
def test_from_file_errors_write_nothing(tiny, error):
    save, tokens, message = BYO_ERRORS[error]
    vectors = save(tiny.parent)
    ids = None
    if tokens is not None:
        ids = tiny.parent / "ids.txt"
        ids.write_text("\n".join(tokens) + "\n")
    with pytest.raises(AlphaFuseError, match=message):
        embed_from_file(tiny, "tiny", vectors, ids)
    assert sorted(path.name for path in tiny.iterdir()) == ["tiny.inter"]


def test_from_file_options_are_checked(tiny):
    command = ["embed", "--dataset", "tiny", "--data-path", str(tiny.parent)]
    with pytest.raises(SystemExit, match="--ids names the rows of --from-file"):
        main(command + ["--ids", "ids.txt"])
    with pytest.raises(SystemExit, match=r"\['--lm'\] choose how text is encoded"):
        main(command + ["--from-file", "v.npy", "--lm", "some-encoder"])
