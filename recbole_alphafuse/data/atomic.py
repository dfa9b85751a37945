"""Reading RecBole atomic files (``field:type`` headers, tab-separated) without RecBole's Dataset."""

import csv
from pathlib import Path

import pandas as pd

from recbole_alphafuse import AlphaFuseError

TEXT_TYPES = ("token", "token_seq")


def read_atomic(path, usecols=None):
    """Read an atomic file as strings; columns are named ``field`` (the ``:type`` dropped).

    Returns:
        (DataFrame, dict field -> type)
    """
    path = Path(path)
    if not path.is_file():
        raise AlphaFuseError(f"atomic file {path} not found.")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
    types = {}
    for column in header:
        field, _, ftype = column.partition(":")
        if not ftype:
            raise AlphaFuseError(
                f"{path}: header column '{column}' has no ':type' (e.g. item_id:token)."
            )
        types[field] = ftype
    if usecols is not None:
        absent = [field for field in usecols if field not in types]
        if absent:
            raise AlphaFuseError(f"{path} has no field(s) {absent}; its fields are {list(types)}.")
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        usecols=[f"{field}:{types[field]}" for field in usecols] if usecols else None,
    )
    frame.columns = [column.partition(":")[0] for column in frame.columns]
    return frame, types
