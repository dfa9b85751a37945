"""A parsed copy of the ``.itememb`` file beside it, so that large files are parsed once.

RecBole parses float_seq cells number by number in Python: about two minutes for 10^5 items x
1536 numbers (benchmarks/results/itememb-load.md). The first load parses the file once (in C),
checks its rows and saves the tokens and vectors (float64: the very values RecBole's parser gives)
as ``.NAME.itememb.<hash>.npz`` beside it, keyed by a SHA-256 hash of the file's content; later
loads of the same content read that file and skip the parsing and the row checks (the cache is
written only after they passed). A changed file has another hash: it is parsed again and the
cache of its older content removed.

Loading goes through RecBole's own Dataset classes, with only the reading of this one file
replaced (:class:`ItemembCacheLoading`); ``itememb_cache: False`` switches the cache off.
"""

import hashlib
import logging
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from recbole.data.dataset import Dataset, KnowledgeBasedDataset, SequentialDataset
from recbole.utils import FeatureType, ModelType
from recbole.utils.argument_list import dataset_arguments

from recbole_alphafuse.data.itememb import (
    ITEMEMB_ID_FIELD,
    ITEMEMB_SUFFIX,
    ITEMEMB_VECTOR_FIELD,
    read_itememb_rows,
)
from recbole_alphafuse.files import written_atomically

logger = logging.getLogger(__name__)

READ_SIZE = 2**20
CACHE_NAME = re.compile(r"\.(?P<name>.+)\.(?P<digest>[0-9a-f]{64})\.npz")


def file_digest(path):
    """Hex SHA-256 digest of the file ``path``, read in 1-MiB blocks.

    SHA-256 rather than BLAKE2b: on CPUs with SHA instructions (x86 since about 2017, ARMv8)
    OpenSSL's SHA-256 is the faster of the two.
    """
    digest = hashlib.sha256()
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb") as f:
        while size := f.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def cache_file(path, digest):
    """The cache of the .itememb file ``path`` whose content has the hash ``digest``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{digest}.npz")


def cache_files(path):
    """The caches of ``path`` now on disk, for whatever content they were written."""
    path = Path(path)
    return sorted(
        file
        for file in path.parent.glob(f".{path.name}.*.npz")
        if (match := CACHE_NAME.fullmatch(file.name)) and match["name"] == path.name
    )


def load_itememb(path):
    """The item tokens (file order) and ``[n, d]`` float64 vectors of the .itememb file ``path``.

    Read from the cache of the file's current content if there is a readable one; otherwise the
    file is parsed and checked (:func:`~recbole_alphafuse.data.itememb.read_itememb_rows`), the
    cache written and the caches of older contents removed.
    """
    path = Path(path)
    before = _file_state(path)
    cache = cache_file(path, file_digest(path))
    if cache.is_file():
        cached = _read_cache(cache)
        if cached is not None:
            logger.info(f"read the parsed {path.name} from {cache.name}")
            return cached
    tokens, vectors = read_itememb_rows(path)
    if _file_state(path) != before:
        # Replaced while being read: the hash may not be that of what was parsed.
        logger.warning(f"{path} changed while it was read: its cache is not written this time")
        return tokens, vectors
    try:
        _write_cache(cache, tokens, vectors)
    except OSError as error:
        logger.warning(
            f"cannot write the cache {cache} ({error}): {path.name} is parsed at every load"
        )
        return tokens, vectors
    for stale in cache_files(path):
        if stale != cache:
            stale.unlink(missing_ok=True)
    return tokens, vectors


def _file_state(path):
    state = path.stat()
    return state.st_ino, state.st_size, state.st_mtime_ns


def _read_cache(cache):
    """Tokens and vectors from ``cache``, or None (with a warning) if it is damaged."""
    try:
        with np.load(cache, allow_pickle=False) as arrays:
            tokens, vectors = arrays["tokens"], arrays["vectors"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        # np.load checks the zip's CRC: a truncated or damaged file fails here.
        logger.warning(f"ignoring the damaged cache {cache} ({error!r}); rebuilding it")
        return None
    if not (
        tokens.ndim == 1
        and vectors.ndim == 2
        and vectors.dtype == np.float64
        and len(tokens) == len(vectors) > 0
    ):
        logger.warning(
            f"ignoring the cache {cache}: it does not hold tokens with vectors; rebuilding it"
        )
        return None
    return tokens.tolist(), vectors


def _write_cache(cache, tokens, vectors):
    """Save ``tokens`` and ``vectors`` to ``cache`` atomically: a temp file renamed into place."""
    with written_atomically(cache) as f:
        np.savez(f, tokens=np.array(tokens, dtype=str), vectors=vectors)


class ItemembCacheLoading:
    """Mixin for a RecBole Dataset class: its ``.itememb`` file is read with :func:`load_itememb`,
    into the same fields and DataFrame RecBole's ``_load_feat`` makes of it (token strings, one
    float64 array per row: here views of one matrix); every other file is read by RecBole.
    """

    def _load_feat(self, filepath, source):
        if source != ITEMEMB_SUFFIX or not self._loads_both_itememb_fields():
            return super()._load_feat(filepath, source)
        tokens, vectors = load_itememb(filepath)
        seq_len = (self.config["seq_len"] or {}).get(ITEMEMB_VECTOR_FIELD)
        if seq_len is not None:
            vectors = vectors[:, :seq_len]
        for field, ftype in (
            (ITEMEMB_ID_FIELD, FeatureType.TOKEN),
            (ITEMEMB_VECTOR_FIELD, FeatureType.FLOAT_SEQ),
        ):
            self.field2source[field] = source
            self.field2type[field] = ftype
        self.field2seqlen[ITEMEMB_ID_FIELD] = 1
        self.field2seqlen[ITEMEMB_VECTOR_FIELD] = vectors.shape[1]
        self.field2bucketnum[ITEMEMB_VECTOR_FIELD] = 2
        return pd.DataFrame({ITEMEMB_ID_FIELD: tokens, ITEMEMB_VECTOR_FIELD: list(vectors)})

    def _preload_weight_matrix(self):
        super()._preload_weight_matrix()
        # Models read the vectors from the preloaded matrix alone: the per-row vectors, which
        # RecBole would also turn into a second [items, d] tensor, are dropped.
        if (self.config["preload_weight"] or {}).get(ITEMEMB_ID_FIELD) == ITEMEMB_VECTOR_FIELD:
            if ITEMEMB_VECTOR_FIELD in self.field2source:
                self._del_col(self.field2feats(ITEMEMB_VECTOR_FIELD)[0], ITEMEMB_VECTOR_FIELD)

    def _loads_both_itememb_fields(self):
        load_col, unload_col = self._get_load_and_unload_col(ITEMEMB_SUFFIX)
        return all(
            (load_col is None or field in load_col)
            and (unload_col is None or field not in unload_col)
            for field in (ITEMEMB_ID_FIELD, ITEMEMB_VECTOR_FIELD)
        )


class CachedItemembDataset(ItemembCacheLoading, Dataset):
    """RecBole's Dataset, reading the .itememb file through its cache."""


class CachedItemembSequentialDataset(ItemembCacheLoading, SequentialDataset):
    """RecBole's SequentialDataset, reading the .itememb file through its cache."""


class CachedItemembKnowledgeBasedDataset(ItemembCacheLoading, KnowledgeBasedDataset):
    """RecBole's KnowledgeBasedDataset, reading the .itememb file through its cache."""


# The class RecBole's create_dataset picks for each model type, with the cache.
DATASET_CLASSES = {
    ModelType.GENERAL: CachedItemembDataset,
    ModelType.SEQUENTIAL: CachedItemembSequentialDataset,
    ModelType.CONTEXT: CachedItemembDataset,
    ModelType.KNOWLEDGE: CachedItemembKnowledgeBasedDataset,
    ModelType.TRADITIONAL: CachedItemembDataset,
    ModelType.DECISIONTREE: CachedItemembDataset,
}


def create_cached_dataset(config):
    """RecBole's ``create_dataset`` for a model that reads the .itememb file, with that file read
    through its cache.

    As RecBole's: a dataset saved earlier (``dataset_save_path``, or the file ``save_dataset:
    True`` writes in ``checkpoint_dir``) is reused while its dataset settings are unchanged.
    """
    dataset_class = DATASET_CLASSES[config["MODEL_TYPE"]]
    saved = config["dataset_save_path"] or os.path.join(
        config["checkpoint_dir"], f"{config['dataset']}-{dataset_class.__name__}.pth"
    )
    if os.path.exists(saved):
        with open(saved, "rb") as f:
            dataset = pickle.load(f)
        if all(
            config[arg] == dataset.config[arg] for arg in [*dataset_arguments, "seed", "repeatable"]
        ):
            logger.info(f"Load filtered dataset from: [{saved}]")
            return dataset
    dataset = dataset_class(config)
    if config["save_dataset"]:
        dataset.save()
    return dataset
