"""Bring-your-own item vectors -> ``NAME.itememb``.

``python -m recbole_alphafuse embed --dataset NAME --from-file F [--ids IDS]`` takes vectors made
elsewhere: a 2-D array (``.npy``, a ``.pt`` tensor or a pickled array/tensor) whose row i is the
vector of the item token on line i of IDS, or a ``.pt``/pickled dict ``{token: vector}``. It
writes vectors for exactly the items of the dataset's interactions, in first-seen order.
``.pt`` and pickle files are read without running code from them: only tensors, numpy arrays,
numbers and dicts or lists of them (``--trust-file`` reads any pickle, for files you trust).
"""

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import interaction_item_tokens
from recbole_alphafuse.data.embed import DEFAULT_ITEM_FIELD
from recbole_alphafuse.data.itememb import itememb_path, write_itememb
from recbole_alphafuse.safe_load import (
    UntrustedFileError,
    load_array_pickle,
    load_tensor_file,
)

logger = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".npy", ".pt", ".pth", ".pickle", ".pkl")
# What numpy, torch and pickle raise on a file that is not what it should be.
UNREADABLE_FILE_ERRORS = (
    pickle.UnpicklingError,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    RuntimeError,
)


VECTOR_FILE_OPT_IN = "--trust-file on the command line (trust=True in Python)"


def load_vector_file(path, trust=False):
    """The object stored in a ``.npy``, ``.pt``/``.pth`` or ``.pickle``/``.pkl`` file; pickles
    hold only tensors, arrays and containers of them unless ``trust``."""
    path = Path(path)
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise AlphaFuseError(
            f"{path}: unknown vector file type '{path.suffix}'; save the vectors as one of "
            f"{list(VECTOR_SUFFIXES)}."
        )
    if not path.is_file():
        raise AlphaFuseError(f"vector file {path} not found.")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() in (".pt", ".pth"):
            if trust:
                return torch.load(path, map_location="cpu", weights_only=False)
            return load_tensor_file(path, VECTOR_FILE_OPT_IN)
        return pd.read_pickle(path) if trust else load_array_pickle(path, VECTOR_FILE_OPT_IN)
    except UntrustedFileError:
        raise
    except UNREADABLE_FILE_ERRORS as error:
        raise AlphaFuseError(
            f"cannot read {path} ({type(error).__name__}: {error}); check that it is a "
            f"{path.suffix} file of an array, tensor or {{token: vector}} dict."
        ) from None


def as_matrix(values, source):
    """``values`` (array, tensor or sequence of equal-length rows) as a float64 2-D array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        if not isinstance(values, np.ndarray):
            # A list (or pandas Series) of rows, each a list, an array or a tensor.
            values = [row.detach().cpu().numpy() if torch.is_tensor(row) else row for row in values]
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AlphaFuseError(
            f"{source}: the vectors are not numbers of one common length ({error}); every item "
            "needs a vector of the same size."
        ) from None
    if matrix.ndim != 2:
        raise AlphaFuseError(
            f"{source} holds an array of shape {matrix.shape}; it must be 2-D: [items, dims]."
        )
    return matrix


def read_ids(path):
    """Item tokens of a text file, one a line."""
    path = Path(path)
    if not path.is_file():
        raise AlphaFuseError(f"id file {path} not found.")
    tokens = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    empty = [number for number, token in enumerate(tokens, 1) if not token]
    if empty:
        raise AlphaFuseError(
            f"{path}: line(s) {empty[:5]} are empty; write one item token per line, no blanks."
        )
    return tokens


def read_item_vectors(vector_file, ids_file=None, trust=False):
    """Item tokens and their vectors: ``(list of tokens, float64 [n, d] array)``."""
    stored = load_vector_file(vector_file, trust)
    if isinstance(stored, Mapping):
        if ids_file is not None:
            raise AlphaFuseError(
                f"{vector_file} holds a {{token: vector}} dict, which names its items: "
                "leave out --ids (it is for array files)."
            )
        tokens = [str(token) for token in stored]
        matrix = as_matrix(list(stored.values()), vector_file)
    else:
        if ids_file is None:
            raise AlphaFuseError(
                f"{vector_file} holds an array without item tokens: pass --ids FILE with the "
                "item token of row i on line i."
            )
        matrix = as_matrix(stored, vector_file)
        tokens = read_ids(ids_file)
        if len(tokens) != len(matrix):
            raise AlphaFuseError(
                f"{vector_file} has {len(matrix)} rows but {ids_file} has {len(tokens)} ids; "
                "they must correspond line by line."
            )
    counts = pd.Series(tokens).value_counts()
    duplicates = counts[counts > 1].index.tolist()
    if duplicates:
        raise AlphaFuseError(
            f"{len(duplicates)} item tokens have more than one vector in "
            f"{ids_file or vector_file} (e.g. {duplicates[:5]}); keep one vector per item."
        )
    return tokens, matrix


def embed_from_file(
    data_path, dataset_name, vector_file, ids_file=None, item_field=DEFAULT_ITEM_FIELD, trust=False
):
    """Write ``<data_path>/<dataset_name>.itememb`` from vectors made elsewhere (``trust``: read
    any pickle, see :func:`load_vector_file`).

    Vectors of tokens without interactions are left out (they would become ghost items).
    """
    dataset_tokens = interaction_item_tokens(data_path, dataset_name, item_field)
    tokens, matrix = read_item_vectors(vector_file, ids_file, trust)
    row_of = {token: row for row, token in enumerate(tokens)}
    missing = [token for token in dataset_tokens if token not in row_of]
    if missing:
        raise AlphaFuseError(
            f"{len(missing)} items of {dataset_name} have no vector in {vector_file} "
            f"(e.g. {missing[:5]}); supply a vector for every item of its interactions."
        )
    vectors = matrix[[row_of[token] for token in dataset_tokens]]
    not_finite = [t for t, ok in zip(dataset_tokens, np.isfinite(vectors).all(axis=1)) if not ok]
    if not_finite:
        raise AlphaFuseError(
            f"{len(not_finite)} items have NaN/inf vectors in {vector_file} "
            f"(e.g. {not_finite[:5]}); fix or recompute those vectors."
        )
    unused = len(tokens) - len(dataset_tokens)
    if unused:
        logger.info(f"left out {unused} vectors of items without interactions in {dataset_name}")
    path = itememb_path(data_path, dataset_name)
    write_itememb(path, dataset_tokens, vectors)
    logger.info(f"wrote {path} ({vectors.shape[0]} items x {vectors.shape[1]} dims)")
    return path
