"""Converters from other dataset layouts to RecBole atomic files.

``lcrec``: the LC-Rec JSON layout (``X.inter.json``: user -> chronological item list,
``X.item.json``: item -> text fields), as in the Amazon Office data.
"""

import csv
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd

from recbole_alphafuse import AlphaFuseError

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\t\r\n]+")


def _clean(text):
    # Tabs and line breaks would split an atomic-file row.
    return _SEPARATORS.sub(" ", str(text)).strip()


def _single(folder, pattern):
    matches = sorted(Path(folder).glob(pattern))
    if len(matches) != 1:
        raise AlphaFuseError(
            f"expected exactly one {pattern} in {folder}, found {[m.name for m in matches]}."
        )
    return matches[0]


def _write_frames(frames, folder, dataset_name):
    """Write ``{suffix: DataFrame}`` with ``field:type`` columns; all files appear or none."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for suffix, frame in frames.items():
            tmp = folder / f".{dataset_name}.{suffix}.{os.getpid()}.tmp"
            written.append((tmp, folder / f"{dataset_name}.{suffix}"))
            frame.to_csv(tmp, sep="\t", index=False, quoting=csv.QUOTE_NONE)
        for tmp, target in written:
            os.replace(tmp, target)
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)


def convert_lcrec(input_dir, data_root, dataset_name):
    """Convert an LC-Rec layout folder into ``<data_root>/<dataset_name>/NAME.inter/.item``.

    The .inter file gets a ``timestamp`` column holding each interaction's position in the
    user's chronological list, so RecBole's time ordering keeps the original order.
    """
    with open(_single(input_dir, "*.inter.json"), encoding="utf-8") as f:
        sequences = json.load(f)
    with open(_single(input_dir, "*.item.json"), encoding="utf-8") as f:
        items = json.load(f)
    rows = [
        (user, str(item), position)
        for user, history in sequences.items()
        for position, item in enumerate(history)
    ]
    unknown = sorted({item for _, item, _ in rows} - set(items))
    if unknown:
        raise AlphaFuseError(
            f"{len(unknown)} items of the .inter.json have no entry in the .item.json "
            f"(e.g. {unknown[:5]})."
        )
    inter = pd.DataFrame(rows, columns=["user_id:token", "item_id:token", "timestamp:float"])
    fields = list(dict.fromkeys(field for entry in items.values() for field in entry))
    item = pd.DataFrame(
        [
            [token] + [_clean(entry.get(field, "")) for field in fields]
            for token, entry in items.items()
        ],
        columns=["item_id:token"] + [f"{field}:token_seq" for field in fields],
    )
    folder = Path(data_root) / dataset_name
    _write_frames({"inter": inter, "item": item}, folder, dataset_name)
    logger.info(
        f"wrote {folder}: {len(sequences)} users, {len(items)} items, {len(inter)} interactions"
    )
    return folder
