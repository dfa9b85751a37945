"""Item text or vectors made elsewhere -> .itememb: the embed command, its alignment, its
chunked and resumable encoding and its atomic write."""

import logging
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SLICE

import recbole_alphafuse.data.embed as embed_module
from recbole_alphafuse import AlphaFuseError, files
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.data import itememb
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.embed import (
    ItemTexts,
    default_encoder_path,
    embed_dataset,
    encode_texts,
    load_encoder,
)
from recbole_alphafuse.data.own_vectors import embed_from_file
from recbole_alphafuse.data.prepare import bundled_dataset_dir, copy_bundled_dataset
from recbole_alphafuse.data.split import write_benchmark_dataset


@pytest.fixture(scope="module")
def default_encoder():
    """all-MiniLM-L6-v2, loaded once for this file's tests."""
    return load_encoder()


def test_itememb_holds_exactly_the_interacted_items(slice_root):
    folder = slice_root / SLICE
    inter, _ = read_atomic(folder / f"{SLICE}.inter", usecols=["item_id"])
    vectors, types = read_atomic(folder / f"{SLICE}.itememb")
    assert types == {"iid": "token", "item_emb": "float_seq"}
    assert sorted(vectors["iid"]) == sorted(set(inter["item_id"]))
    matrix = np.array([row.split(" ") for row in vectors["item_emb"]], dtype=np.float64)
    assert matrix.shape == (len(vectors), 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def item_text(folder, fields=None, chunk_size=100):
    """{item token: text} of the slice, read chunk by chunk."""
    chunks = ItemTexts(folder, SLICE, fields).chunks(chunk_size)
    return {token: text for tokens, texts in chunks for token, text in zip(tokens, texts)}


def test_item_text_names_each_field(slice_root):
    texts = item_text(slice_root / SLICE)
    assert (
        texts["1"]
        == "movie title: Toy Story. release year: 1995. class: Animation Children's Comedy"
    )
    assert item_text(slice_root / SLICE, fields=["movie_title"])["1"] == "movie title: Toy Story"


def test_similar_titles_get_closer_vectors(default_encoder):
    vectors = encode_texts(
        ["Toy Story 2 (animation)", "Toy Story (animation)", "Schindler's List (war drama)"],
        default_encoder,
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
            "--chunk-size",
            "100",
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
        ItemTexts(folder, SLICE)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "x.itememb"

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        itememb.write_itememb(target, ["a", "b"], np.ones((2, 3)))
    assert list(tmp_path.iterdir()) == []


def test_non_finite_vectors_are_not_written(tmp_path):
    with pytest.raises(AlphaFuseError, match="NaN/inf"):
        itememb.write_itememb(tmp_path / "x.itememb", ["a"], np.array([[np.nan, 1.0]]))
    assert list(tmp_path.iterdir()) == []


def read_vectors(path):
    """{item token: vector} of an .itememb file, in file order."""
    frame, _ = read_atomic(path)
    return {
        token: np.array(row.split(), dtype=np.float32)
        for token, row in zip(frame["iid"], frame["item_emb"])
    }


@torch.no_grad()
def plain_transformers_vectors(texts, batch_size=32):
    """all-MiniLM-L6-v2 straight through transformers: batches in the given order, mean pooling."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    model = AutoModel.from_pretrained(default_encoder_path()).eval()
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
        )
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)
        vectors.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(vectors).numpy()


@pytest.fixture
def small_slice(data_copy, default_encoder, monkeypatch):
    """The slice cut to its first 150 interactions (about 110 items), without vectors; each embed
    run reuses one loaded default encoder."""
    _, folder = data_copy
    inter = folder / f"{SLICE}.inter"
    inter.write_text("".join(inter.read_text().splitlines(keepends=True)[:151]))
    (folder / f"{SLICE}.itememb").unlink()
    monkeypatch.setattr(embed_module, "load_encoder", lambda *args, **kwargs: default_encoder)
    return folder


def test_chunked_embed_matches_one_pass_and_plain_transformers(slice_root, small_slice):
    embed_dataset(small_slice, SLICE, chunk_size=16, show_progress=False)
    chunked = read_vectors(small_slice / f"{SLICE}.itememb")
    texts = item_text(small_slice)
    assert list(chunked) == list(texts)  # .item order
    # The fixture's vectors were made in one chunk (the slice is smaller than the default size).
    whole = read_vectors(slice_root / SLICE / f"{SLICE}.itememb")
    assert max(np.abs(chunked[token] - whole[token]).max() for token in chunked) < 1e-5
    sample = list(texts)[:48]
    reference = plain_transformers_vectors([texts[token] for token in sample])
    assert np.abs(np.stack([chunked[token] for token in sample]) - reference).max() < 1e-5


def count_encodings(monkeypatch, interrupt_at=None):
    """Record the size of each chunk sent to the encoder; on call ``interrupt_at`` raise
    KeyboardInterrupt instead, as Ctrl-C would."""
    sizes = []

    def counting(texts, *args, **kwargs):
        sizes.append(len(texts))
        if len(sizes) == interrupt_at:
            raise KeyboardInterrupt
        return encode_texts(texts, *args, **kwargs)

    monkeypatch.setattr(embed_module, "encode_texts", counting)
    return sizes


SMALL_RUN = {"fields": ["movie_title"], "chunk_size": 16, "show_progress": False}


def test_interrupted_embed_resumes_from_its_finished_chunks(small_slice, monkeypatch, caplog):
    output = small_slice / f"{SLICE}.itememb"
    parts = small_slice / f".{SLICE}.itememb.parts"
    count_encodings(monkeypatch, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(small_slice, SLICE, **SMALL_RUN)
    assert not output.exists()
    assert sorted(path.name for path in parts.iterdir()) == [
        "manifest.json",
        "part-000000.npz",
        "part-000001.npz",
    ]

    sizes = count_encodings(monkeypatch)
    with caplog.at_level(logging.INFO, logger=embed_module.__name__):
        embed_dataset(small_slice, SLICE, **SMALL_RUN)
    n_items = len(item_text(small_slice))
    assert n_items > 4 * 16
    assert len(sizes) == -(-n_items // 16) - 2 and sum(sizes) == n_items - 2 * 16
    assert "2 of" in caplog.text and "skipping them" in caplog.text
    assert not parts.exists()

    resumed = output.read_bytes()
    output.unlink()
    monkeypatch.setattr(embed_module, "encode_texts", encode_texts)
    embed_dataset(small_slice, SLICE, **SMALL_RUN)
    assert output.read_bytes() == resumed


def other_fields(folder):
    return {**SMALL_RUN, "fields": ["movie_title", "class"]}


def edited_title(folder):
    """Retitle the first item of the run; the options stay the same."""
    first = next(iter(item_text(folder)))
    item_file = folder / f"{SLICE}.item"
    lines = item_file.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines):
        cells = line.split("\t")
        if cells[0] == first:
            lines[number] = "\t".join([first, "A Different Title", *cells[2:]])
    item_file.write_text("".join(lines))
    return SMALL_RUN


CHANGES = {"other fields": other_fields, "edited item text": edited_title}


@pytest.mark.parametrize("change", CHANGES)
def test_changed_inputs_discard_stale_chunks(
    small_slice, default_encoder, monkeypatch, caplog, change
):
    count_encodings(monkeypatch, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(small_slice, SLICE, **SMALL_RUN)
    options = CHANGES[change](small_slice)
    sizes = count_encodings(monkeypatch)
    with caplog.at_level(logging.INFO, logger=embed_module.__name__):
        embed_dataset(small_slice, SLICE, **options)
    assert "discarding 2 stale chunks" in caplog.text
    texts = item_text(small_slice, options["fields"])
    assert sum(sizes) == len(texts)
    written = read_vectors(small_slice / f"{SLICE}.itememb")
    first = next(iter(texts))
    assert np.abs(written[first] - encode_texts([texts[first]], default_encoder)[0]).max() < 1e-5
    assert not (small_slice / f".{SLICE}.itememb.parts").exists()


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
