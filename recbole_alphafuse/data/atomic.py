"""Reading RecBole atomic files (``field:type`` headers, tab-separated) without RecBole's Dataset."""

import csv
from pathlib import Path

import pandas as pd

from recbole_alphafuse import AlphaFuseError

TEXT_TYPES = ("token", "token_seq")
# The files of a pre-split dataset, NAME.<split>.inter, as RecBole's benchmark_filename names them.
BENCHMARK_SPLITS = ("train", "valid", "test")


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
        return list(dict.fromkeys(inter[item_field]))
    list_field = f"{item_field}_list"
    tokens = {}
    for path in benchmark:
        inter, _ = read_atomic(path, usecols=[list_field, item_field])
        for history, target in zip(inter[list_field], inter[item_field]):
            tokens.update(dict.fromkeys(history.split()))
            tokens[target] = None
    return list(tokens)
