"""Pre-split datasets: RecBole benchmark files of (history, next item) examples.

``python -m recbole_alphafuse split cold-start --dataset NAME`` writes ``NAME-cold``: the users of
``NAME`` shuffled and split 80/10/10 with no overlap, as in AlphaFuse's cold-start user setting.
Every training user contributes all its (last ``max_history`` items, next item) examples; every
validation and test user contributes one, its last item given the items before it. The files
are ``NAME-cold.{train,valid,test}.inter`` (``user_id``, ``item_id_list``, ``item_id``) with the
item text and vectors of the items that remain, and ``NAME-cold.yaml``, the RecBole settings
that load them (:func:`recbole_alphafuse.config.Config` reads a dataset folder's yaml).
"""

import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import BENCHMARK_SPLITS, check_atomic_file, read_atomic
from recbole_alphafuse.data.itememb import check_itememb_header, check_itememb_rows, itememb_path

logger = logging.getLogger(__name__)

USER_FIELD, ITEM_FIELD, TIME_FIELD = "user_id", "item_id", "timestamp"
ITEM_LIST_FIELD = f"{ITEM_FIELD}_list"


def dataset_settings_path(folder, dataset_name):
    """The yaml of RecBole settings that a dataset folder carries for itself."""
    return Path(folder) / f"{dataset_name}.yaml"


def benchmark_settings(max_history):
    """RecBole settings that load pre-split ``(user, history, next item)`` benchmark files."""
    return {
        "benchmark_filename": list(BENCHMARK_SPLITS),
        "load_col": {"inter": [USER_FIELD, ITEM_LIST_FIELD, ITEM_FIELD]},
        "alias_of_item_id": [ITEM_LIST_FIELD],
        "MAX_ITEM_LIST_LENGTH": int(max_history),
    }


def write_benchmark_dataset(folder, dataset_name, splits, max_history, extra_files=()):
    """Write ``splits`` as RecBole benchmark files plus the dataset's settings yaml.

    Args:
        folder: the dataset folder to create (must not hold a dataset yet).
        splits: ``{"train"|"valid"|"test": DataFrame}`` with columns ``user_id`` (token),
            ``item_id_list`` (list of item tokens, oldest first) and ``item_id`` (the target).
        max_history: longest history in the files (RecBole's ``MAX_ITEM_LIST_LENGTH``).
        extra_files: ``(suffix, writer)`` pairs; ``writer(path)`` writes ``NAME.<suffix>``.

    Everything goes to a temporary folder renamed into place, so a failure leaves nothing.
    """
    folder = Path(folder)
    if folder.exists():
        raise AlphaFuseError(
            f"{folder} already exists: remove it (or choose another --dataset) to write it again."
        )
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for split in BENCHMARK_SPLITS:
            frame = splits[split]
            pd.DataFrame(
                {
                    f"{USER_FIELD}:token": frame[USER_FIELD].astype(str),
                    f"{ITEM_LIST_FIELD}:token_seq": [" ".join(h) for h in frame[ITEM_LIST_FIELD]],
                    f"{ITEM_FIELD}:token": frame[ITEM_FIELD].astype(str),
                }
            ).to_csv(
                tmp / f"{dataset_name}.{split}.inter",
                sep="\t",
                index=False,
                quoting=csv.QUOTE_NONE,
            )
        for suffix, writer in extra_files:
            writer(tmp / f"{dataset_name}.{suffix}")
        with open(dataset_settings_path(tmp, dataset_name), "w", encoding="utf-8") as f:
            yaml.safe_dump(benchmark_settings(max_history), f, sort_keys=False)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = ", ".join(f"{split} {len(splits[split])}" for split in BENCHMARK_SPLITS)
    logger.info(f"wrote {folder}: examples {sizes}")
    return folder


def benchmark_items(splits):
    """Item tokens used anywhere in the splits (histories and targets)."""
    items = set()
    for frame in splits.values():
        items.update(frame[ITEM_FIELD].astype(str))
        for history in frame[ITEM_LIST_FIELD]:
            items.update(history)
    return items


def filtered_copy(source, keep_tokens):
    """A writer copying the atomic file ``source`` with only the rows whose first field is kept.

    Rows are copied as text: vectors and text are not parsed, so nothing is rounded.
    """

    def write(target):
        with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
            dst.write(src.readline())
            for line in src:
                if line.split("\t", 1)[0] in keep_tokens:
                    dst.write(line)

    return write


def user_sequences(data_path, dataset_name):
    """Each user's items in time order (file order among equal times): ``{user: [items]}``."""
    inter, _ = read_atomic(
        Path(data_path) / f"{dataset_name}.inter", usecols=[USER_FIELD, ITEM_FIELD, TIME_FIELD]
    )
    try:
        inter[TIME_FIELD] = inter[TIME_FIELD].astype(float)
    except ValueError as error:
        raise AlphaFuseError(f"{dataset_name}.inter: non-numeric {TIME_FIELD} ({error}).") from None
    inter = inter.sort_values([USER_FIELD, TIME_FIELD], kind="stable")
    return inter.groupby(USER_FIELD, sort=False)[ITEM_FIELD].agg(list).to_dict()


def _examples(sequences, users, max_history, every_position):
    rows = []
    for user in users:
        items = sequences[user]
        targets = range(1, len(items)) if every_position else [len(items) - 1]
        for position in targets:
            rows.append((user, items[max(0, position - max_history) : position], items[position]))
    return pd.DataFrame(rows, columns=[USER_FIELD, ITEM_LIST_FIELD, ITEM_FIELD])


def split_cold_start(
    data_root, dataset_name, ratios=(0.8, 0.1, 0.1), max_history=10, seed=2020, target_name=None
):
    """Write ``<data_root>/<NAME>-cold``: the user-disjoint cold-start split of ``NAME``.

    Users with fewer than two interactions form no example and are left out.
    """
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or (ratios < 0).any() or not np.isclose(ratios.sum(), 1.0):
        raise AlphaFuseError(
            f"--ratios must be three non-negative numbers summing to 1 (train,valid,test), "
            f"got {list(ratios)}."
        )
    if max_history < 1:
        raise AlphaFuseError(f"--max-history must be at least 1, got {max_history}.")
    source = Path(data_root) / dataset_name
    target_name = target_name or f"{dataset_name}-cold"
    target = Path(data_root) / target_name
    if target.exists():
        raise AlphaFuseError(
            f"{target} already exists: remove it (or pass another name) to split again."
        )
    sequences = user_sequences(source, dataset_name)
    # The item text and vectors are copied as text: check them here, not in a later run.
    if (source / f"{dataset_name}.item").is_file():
        check_atomic_file(source / f"{dataset_name}.item", unique=ITEM_FIELD)
    if itememb_path(source, dataset_name).is_file():
        check_itememb_header(itememb_path(source, dataset_name))
        check_itememb_rows(itememb_path(source, dataset_name))
    users = sorted(user for user, items in sequences.items() if len(items) >= 2)
    dropped = len(sequences) - len(users)
    order = np.random.default_rng(seed).permutation(len(users))
    bounds = np.round(np.cumsum(ratios)[:2] * len(users)).astype(int)
    groups = np.split(np.asarray(users, dtype=object)[order], bounds)
    if any(len(group) == 0 for group in groups):
        raise AlphaFuseError(
            f"{dataset_name} has {len(users)} users with two or more interactions: too few for "
            f"the ratios {list(ratios)} (a split would be empty)."
        )
    splits = {
        split: _examples(sequences, group, max_history, every_position=split == "train")
        for split, group in zip(BENCHMARK_SPLITS, groups)
    }
    items = benchmark_items(splits)
    extra_files = []
    for suffix, path in (
        ("item", source / f"{dataset_name}.item"),
        ("itememb", itememb_path(source, dataset_name)),
    ):
        if path.is_file():
            extra_files.append((suffix, filtered_copy(path, items)))
    write_benchmark_dataset(target, target_name, splits, max_history, extra_files)
    logger.info(
        f"{target_name}: users train/valid/test {[len(g) for g in groups]}"
        + (f", {dropped} users with fewer than 2 interactions left out" if dropped else "")
    )
    return target
