"""Shared fixtures: a small real slice of ml-100k with MiniLM item embeddings built by `embed`."""

import shutil
import sys

import pandas as pd
import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import init_seed

from recbole_alphafuse.config import Config
from recbole_alphafuse.data.embed import embed_dataset
from recbole_alphafuse.data.prepare import bundled_dataset_dir
from recbole_alphafuse.quick_start import create_dataset

SLICE = "ml-slice"
SLICE_USERS = 60

# One short epoch of a small encoder: the end-to-end tests check paths, not quality.
FAST_CONFIG = {
    "epochs": 1,
    "MAX_ITEM_LIST_LENGTH": 10,
    "hidden_size": 32,
    "null_dim": 16,
    "n_layers": 1,
    "n_heads": 1,
    "inner_size": 64,
    "train_batch_size": 512,
    "eval_batch_size": 512,
    "show_progress": False,
    "use_gpu": False,
    "seed": 7,
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
}


class Table(torch.nn.Module):
    """The smallest item-embedding strategy: rows of a given ``weight`` by item id."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, ids):
        return self.weight[ids]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """RecBole's Config parses sys.argv; keep pytest's own flags out of it."""
    monkeypatch.setattr(sys, "argv", ["pytest"])


def _write_atomic(frame, types, path):
    frame = frame.copy()
    frame.columns = [f"{column}:{types[column]}" for column in frame.columns]
    frame.to_csv(path, sep="\t", index=False)


@pytest.fixture(scope="session")
def slice_root(tmp_path_factory):
    """A data_path holding ``ml-slice``: the first 60 users of ml-100k, their items' text and
    a real .itememb made by the embed step with the default encoder."""
    root = tmp_path_factory.mktemp("data")
    folder = root / SLICE
    folder.mkdir()
    source = bundled_dataset_dir("ml-100k")
    inter = pd.read_csv(source / "ml-100k.inter", sep="\t", dtype=str)
    inter.columns = [c.split(":")[0] for c in inter.columns]
    users = sorted(inter["user_id"].unique(), key=int)[:SLICE_USERS]
    inter = inter[inter["user_id"].isin(users)]
    _write_atomic(
        inter,
        {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"},
        folder / f"{SLICE}.inter",
    )
    items = pd.read_csv(source / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False)
    items.columns = [c.split(":")[0] for c in items.columns]
    items = items[items["item_id"].isin(set(inter["item_id"]))]
    _write_atomic(
        items,
        {
            "item_id": "token",
            "movie_title": "token_seq",
            "release_year": "token",
            "class": "token_seq",
        },
        folder / f"{SLICE}.item",
    )
    embed_dataset(folder, SLICE, show_progress=False)
    return root


@pytest.fixture
def data_copy(slice_root, tmp_path):
    """A private copy of the slice, for tests that damage its files; returns (root, folder)."""
    root = tmp_path / "data"
    shutil.copytree(slice_root, root)
    return root, root / SLICE


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a temporary folder: RecBole writes log/ and saved/ relative to the cwd."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build_model(slice_root, name, base_config=FAST_CONFIG, **overrides):
    """Config, untrained model and dataloaders of ``name`` on the slice: (config, model, train, valid)."""
    config = Config(
        model=name,
        dataset=SLICE,
        config_dict={**base_config, "data_path": str(slice_root), **overrides},
    )
    init_seed(config["seed"], config["reproducibility"])
    train_data, valid_data, _ = data_preparation(config, create_dataset(config))
    # As RecBole's own runs: the model's initial weights follow from the seed alone.
    init_seed(config["seed"], config["reproducibility"])
    return config, config.model_class(config, train_data._dataset), train_data, valid_data
