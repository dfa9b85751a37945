"""The parsed-matrix cache of the .itememb file: the same vectors as RecBole's own parsing, read
instead of parsing on a later load, rebuilt when the file changes or the cache is damaged."""

import numpy as np
import pytest
import torch
from conftest import FAST_CONFIG, SLICE
from recbole.data.dataset import Dataset
from recbole.utils import FeatureSource

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.data import itememb_cache, prepare
from recbole_alphafuse.data.itememb import itememb_path, language_embeddings
from recbole_alphafuse.data.itememb_cache import cache_files
from recbole_alphafuse.quick_start import create_dataset


def load(root, **overrides):
    config = Config(
        model="AlphaFuseSASRec",
        dataset=SLICE,
        config_dict={**FAST_CONFIG, "data_path": str(root), **overrides},
    )
    return create_dataset(config)


def refuse_parsing(monkeypatch):
    """Make every way of parsing the .itememb text fail; returns the sources RecBole reads."""

    def parse(*args, **kwargs):
        raise AssertionError("the .itememb file was parsed")

    monkeypatch.setattr(itememb_cache, "read_itememb_rows", parse)
    monkeypatch.setattr(prepare, "check_itememb_rows", parse)
    sources = []
    recbole_load_feat = Dataset._load_feat

    def load_feat(self, filepath, source):
        sources.append(source)
        return recbole_load_feat(self, filepath, source)

    monkeypatch.setattr(Dataset, "_load_feat", load_feat)
    return sources


# RecBole's ml-100k settings min-max normalise every float field, the vectors included.
@pytest.mark.parametrize("settings", [{}, {"normalize_all": True}], ids=["plain", "normalized"])
def test_cached_vectors_equal_recboles_own_parsing(settings, data_copy, workdir):
    root, folder = data_copy
    path = itememb_path(folder, SLICE)
    for stale in cache_files(path):  # the session's slice may have been loaded before
        stale.unlink()
    reference = load(root, itememb_cache=False, **settings)
    assert type(reference) is not itememb_cache.CachedItemembSequentialDataset
    assert cache_files(path) == []

    # The first load writes the cache, the second reads it.
    first, second = load(root, **settings), load(root, **settings)
    assert len(cache_files(path)) == 1
    expected = language_embeddings(reference)
    recbole_matrix = reference.get_preload_weight("iid")
    for dataset in (first, second):
        assert type(dataset) is itememb_cache.CachedItemembSequentialDataset
        assert list(dataset.field2id_token["item_id"]) == list(reference.field2id_token["item_id"])
        assert dataset.field2type["iid"] == reference.field2type["iid"]
        assert dataset.field2seqlen["iid"] == reference.field2seqlen["iid"]
        assert dataset.field2source["iid"] == reference.field2source["iid"]
        # The vectors live in the preloaded matrix only: no second [items, d] copy per row.
        assert "item_emb" in reference.field2type and "item_emb" not in dataset.field2type
        assert "item_emb" not in dataset.itememb_feat
        assert torch.equal(language_embeddings(dataset), expected)
        assert np.array_equal(dataset.get_preload_weight("iid"), recbole_matrix)


def test_second_load_reads_the_cache(data_copy, workdir, monkeypatch):
    root, _ = data_copy
    expected = language_embeddings(load(root))
    sources = refuse_parsing(monkeypatch)
    dataset = load(root)
    assert FeatureSource.INTERACTION in sources and "itememb" not in sources
    assert torch.equal(language_embeddings(dataset), expected)


def _change_one_value(path):
    """Change the last digit of one number of the first row (the file keeps its size); returns
    the row's item token, the number's position and its new value."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    token, vector = lines[1].rstrip("\n").split("\t")
    numbers = vector.split(" ")
    position = next(i for i, number in enumerate(numbers) if "e" not in number)
    old = numbers[position]
    numbers[position] = old[:-1] + str((int(old[-1]) + 5) % 10)
    lines[1] = f"{token}\t{' '.join(numbers)}\n"
    size = path.stat().st_size
    path.write_text("".join(lines), encoding="utf-8")
    assert path.stat().st_size == size
    return token, position, np.float32(float(numbers[position]))


def test_changed_file_invalidates_the_cache(data_copy, workdir):
    root, folder = data_copy
    path = itememb_path(folder, SLICE)
    load(root)
    (old_cache,) = cache_files(path)
    token, position, value = _change_one_value(path)

    dataset = load(root)
    (new_cache,) = cache_files(path)
    assert new_cache != old_cache and not old_cache.exists()
    item = dataset.token2id("item_id", token)
    assert language_embeddings(dataset)[item, position] == torch.tensor(value)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty", "wrong arrays"])
def test_damaged_cache_is_rebuilt(damage, data_copy, workdir, monkeypatch):
    root, folder = data_copy
    path = itememb_path(folder, SLICE)
    expected = language_embeddings(load(root))
    (cache,) = cache_files(path)
    data = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(data[: len(data) // 2])
    elif damage == "flipped byte":
        middle = len(data) // 2
        cache.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        with open(cache, "wb") as f:
            np.savez(f, tokens=np.array(["1"]), vectors=np.zeros((2, 3)))

    assert torch.equal(language_embeddings(load(root)), expected)
    assert cache_files(path) == [cache]
    refuse_parsing(monkeypatch)  # rebuilt: the next load reads it
    assert torch.equal(language_embeddings(load(root)), expected)


def test_malformed_file_fails_without_writing_a_cache(data_copy, workdir):
    root, folder = data_copy
    path = itememb_path(folder, SLICE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:3], lines[3].replace(" ", " 0.1x ", 1), *lines[4:]]))
    before = cache_files(path)
    with pytest.raises(AlphaFuseError, match=r"line 4 holds '0\.1x', which is not a number"):
        load(root)
    assert cache_files(path) == before


def test_unwritable_folder_still_loads(data_copy, workdir, monkeypatch):
    root, folder = data_copy
    path = itememb_path(folder, SLICE)
    for stale in cache_files(path):
        stale.unlink()

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(np, "savez", refuse)
    expected = language_embeddings(load(root, itememb_cache=False))
    assert torch.equal(language_embeddings(load(root)), expected)
    assert cache_files(path) == []


def test_saved_dataset_is_reused(data_copy, workdir, monkeypatch):
    root, _ = data_copy
    expected = language_embeddings(load(root, save_dataset=True))
    assert (workdir / "saved" / f"{SLICE}-CachedItemembSequentialDataset.pth").is_file()
    sources = refuse_parsing(monkeypatch)
    assert torch.equal(language_embeddings(load(root, save_dataset=True)), expected)
    assert sources == [], "RecBole's saved dataset is loaded, no file read"
