"""Reading RecBole atomic files (``field:type`` headers, tab-separated) without RecBole's Dataset."""

import csv
from pathlib import Path

import pandas as pd

from recbole_alphafuse import AlphaFuseError

TEXT_TYPES = ("token", "token_seq")
# RecBole's FeatureType values.
ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
# The files of a pre-split dataset, NAME.<split>.inter, as RecBole's benchmark_filename names them.
BENCHMARK_SPLITS = ("train", "valid", "test")


def atomic_header(path):
    """The ``field -> type`` header of the atomic file ``path``, checked: the file exists, is not
    empty, and every column is ``field:type`` with one of RecBole's types."""
    path = Path(path)
    if not path.is_file():
        raise AlphaFuseError(f"atomic file {path} not found.")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
    if header == [""]:
        raise AlphaFuseError(
            f"{path} is empty: an atomic file starts with a header of tab-separated field:type "
            "columns (e.g. item_id:token), then one row per line."
        )
    types = {}
    for column in header:
        field, _, ftype = column.partition(":")
        if not ftype:
            raise AlphaFuseError(
                f"{path}: header column '{column}' has no ':type' (e.g. item_id:token)."
            )
        if ftype not in ATOMIC_TYPES:
            raise AlphaFuseError(
                f"{path}: header column '{column}' has the type '{ftype}'; RecBole's types are "
                f"{list(ATOMIC_TYPES)}."
            )
        if field in types:
            raise AlphaFuseError(f"{path}: the header names the field '{field}' twice.")
        types[field] = ftype
    return types


def read_atomic(path, usecols=None):
    """Read an atomic file as strings; columns are named ``field`` (the ``:type`` dropped).

    Returns:
        (DataFrame, dict field -> type)
    """
    path = Path(path)
    types = atomic_header(path)
    if usecols is not None:
        absent = [field for field in usecols if field not in types]
        if absent:
            raise AlphaFuseError(f"{path} has no field(s) {absent}; its fields are {list(types)}.")
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
        )
    except pd.errors.ParserError as error:
        raise AlphaFuseError(
            f"{path}: a row has more tab-separated fields than the header's {len(types)} "
            f"({str(error).strip().split(': ')[-1]}); remove the extra tabs."
        ) from None
    # pandas refuses rows with too many fields but pads short ones with "": when no row is
    # longer, every row has all its fields exactly when the file holds as many tabs as that.
    if _count_tabs(path) != (len(types) - 1) * (len(frame) + 1):
        number = _first_short_row(path, len(types))
        raise AlphaFuseError(
            f"{path}, line {number}: fewer tab-separated fields than the header's "
            f"{len(types)}; complete the row or remove it."
        )
    frame.columns = [column.partition(":")[0] for column in frame.columns]
    # All columns are read (pandas checks field counts only then); the wanted ones are kept.
    return (frame if usecols is None else frame[list(usecols)]), types


def _count_tabs(path, block=1 << 24):
    count = 0
    with open(path, "rb") as f:
        while data := f.read(block):
            count += data.count(b"\t")
    return count


def _first_short_row(path, width):
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip() and line.count("\t") < width - 1:
                return number
    return None


def check_atomic_file(path, fields=None, unique=None):
    """Fail with the fix if RecBole would misread ``path`` or fail on it with a bare error.

    Checks what :func:`read_atomic` checks (header, field counts, the ``fields`` RecBole is told to
    load, None: all), then that the file has rows, that its ``float`` cells are numbers (empty
    cells are allowed: RecBole fills them) and, if ``unique`` names a field, that no token repeats
    in it (RecBole silently keeps the first row of a repeated item or user).
    """
    frame, types = read_atomic(path, usecols=fields)
    if frame.empty:
        raise AlphaFuseError(f"{path} has no rows after its header: add the data or remove it.")
    for field in frame.columns:
        if types[field] != "float":
            continue
        cells = frame[field].str.strip()
        bad = pd.to_numeric(cells, errors="coerce").isna() & ~cells.str.lower().isin(["", "nan"])
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise AlphaFuseError(
                f"{path}, line {row + 2}: the float field '{field}' holds "
                f"'{frame[field].iloc[row]}', which is not a number ({int(bad.sum())} such "
                "cells); fix or remove those rows."
            )
    if unique is not None and unique in frame.columns:
        repeated = frame[unique].duplicated(keep=False).to_numpy().nonzero()[0]
        if len(repeated):
            token = frame[unique].iloc[repeated[0]]
            lines = [int(i) + 2 for i in repeated if frame[unique].iloc[i] == token]
            raise AlphaFuseError(
                f"{path}: the {unique} '{token}' appears on lines {lines} "
                f"({frame[unique].iloc[repeated].nunique()} repeated tokens in all); keep one row "
                f"per {unique}."
            )
    return frame, types


def interaction_item_tokens(data_path, dataset_name, item_field="item_id"):
    """Item tokens of a dataset's interactions, in first-seen order.

    Reads ``NAME.inter``, or else the benchmark files ``NAME.{train,valid,test}.inter`` (their
    histories ``<item_field>_list`` and targets) written by ``split`` and ``convert``.
    """
    data_path = Path(data_path)
    single = data_path / f"{dataset_name}.inter"
    benchmark = [data_path / f"{dataset_name}.{split}.inter" for split in BENCHMARK_SPLITS]
    if single.is_file() or not all(path.is_file() for path in benchmark):
        inter, _ = read_atomic(single, usecols=[item_field])
        if inter.empty:
            raise AlphaFuseError(f"{single} has no interactions: add its rows.")
        return list(dict.fromkeys(inter[item_field]))
    list_field = f"{item_field}_list"
    tokens = {}
    for path in benchmark:
        inter, _ = read_atomic(path, usecols=[list_field, item_field])
        for history, target in zip(inter[list_field], inter[item_field]):
            tokens.update(dict.fromkeys(history.split()))
            tokens[target] = None
    if not tokens:
        raise AlphaFuseError(f"the benchmark files {benchmark} have no interactions.")
    return list(tokens)
