"""Bad input ends in one clear AlphaFuseError before training starts."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_CONFIG, SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.quick_start import run

REPO = Path(__file__).resolve().parent.parent


def start(root, **overrides):
    config = {**FAST_CONFIG, "data_path": str(root), "epochs": 0, **overrides}
    return run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config, saved=False)


def edit_itememb(folder, edit):
    path = folder / f"{SLICE}.itememb"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def test_missing_itememb_without_item_text(data_copy, workdir):
    root, folder = data_copy
    (folder / f"{SLICE}.itememb").unlink()
    (folder / f"{SLICE}.item").unlink()
    with pytest.raises(
        AlphaFuseError, match=r"ml-slice.itememb not found and there is no ml-slice.item"
    ):
        start(root)


def test_missing_itememb_is_built_from_item_text(data_copy, workdir):
    root, folder = data_copy
    original = (folder / f"{SLICE}.itememb").read_text()
    (folder / f"{SLICE}.itememb").unlink()
    start(root)
    assert (folder / f"{SLICE}.itememb").read_text() == original


def test_extra_tokens_would_be_ghost_items(data_copy, workdir):
    root, folder = data_copy
    edit_itememb(folder, lambda lines: lines + ["99999\t" + lines[1].split("\t")[1]])
    with pytest.raises(
        AlphaFuseError, match=r"1 item tokens in ml-slice.itememb have no interaction.*'99999'"
    ):
        start(root)


def test_item_without_vector(data_copy, workdir):
    root, folder = data_copy
    token = (folder / f"{SLICE}.itememb").read_text().splitlines()[1].split("\t")[0]
    edit_itememb(folder, lambda lines: [lines[0]] + lines[2:])
    with pytest.raises(AlphaFuseError, match=rf"1 items have no vector.*'{token}'"):
        start(root)


def test_wrong_field_names(data_copy, workdir):
    root, folder = data_copy
    edit_itememb(folder, lambda lines: ["item_id:token\temb:float_seq"] + lines[1:])
    with pytest.raises(
        AlphaFuseError,
        match=r"ml-slice.itememb has the header \['item_id:token', 'emb:float_seq'\]",
    ):
        start(root)


def test_nan_in_embeddings(data_copy, workdir):
    root, folder = data_copy

    def poison(lines):
        token, vector = lines[3].split("\t")
        values = vector.split(" ")
        values[5] = "nan"
        return lines[:3] + [f"{token}\t{' '.join(values)}"] + lines[4:]

    edit_itememb(folder, poison)
    with pytest.raises(AlphaFuseError, match=r"1 items have NaN or inf values"):
        start(root)


def test_embedding_narrower_than_hidden_size(slice_root, workdir):
    with pytest.raises(
        AlphaFuseError, match=r"hidden_size=512 exceeds the language embedding dimension 384"
    ):
        start(slice_root, hidden_size=512)


def test_null_dim_not_below_hidden_size(slice_root, workdir):
    with pytest.raises(AlphaFuseError, match=r"got null_dim=32"):
        start(slice_root, hidden_size=32, null_dim=32)


def test_unknown_model_is_one_line_on_the_command_line(workdir):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_recbole.py"),
            "--model=AlphaFuseSASRc",
            "--dataset=ml-100k",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Unknown model 'AlphaFuseSASRc'" in lines[0]
