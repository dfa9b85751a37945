"""Converters from other dataset layouts to RecBole atomic files.

``lcrec``: the LC-Rec JSON layout (``X.inter.json``: user -> chronological item list,
``X.item.json``: item -> text fields), as in the Amazon Office data.
``alphafuse``: the AlphaFuse / DreamRec / PreferDiff layout of pickled DataFrames of
(padded history, next item) examples plus a language-vector pickle; it becomes a pre-split
dataset (benchmark files, see :mod:`recbole_alphafuse.data.split`) with its ``.itememb``.
``amazon``: raw Amazon review and metadata JSON lines (2018 layout), filtered to a k-core.
"""

import ast
import csv
import gzip
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import BENCHMARK_SPLITS
from recbole_alphafuse.data.itememb import ITEMEMB_SUFFIX, itememb_path, write_itememb
from recbole_alphafuse.data.own_vectors import UNREADABLE_FILE_ERRORS, as_matrix, load_vector_file
from recbole_alphafuse.data.split import (
    ITEM_FIELD,
    ITEM_LIST_FIELD,
    USER_FIELD,
    benchmark_items,
    dataset_settings_path,
    write_benchmark_dataset,
)

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\t\r\n]+")


def _clean(text):
    # Tabs and line breaks would split an atomic-file row.
    return _SEPARATORS.sub(" ", str(text)).strip()


def _single(folder, pattern, fix=""):
    matches = sorted(Path(folder).glob(pattern))
    if len(matches) != 1:
        raise AlphaFuseError(
            f"expected exactly one {pattern} in {folder}, found {[m.name for m in matches]}." + fix
        )
    return matches[0]


def _write_frames(frames, folder, dataset_name):
    """Write ``{suffix: DataFrame}`` with ``field:type`` columns; all files appear or none.

    Also writes ``NAME.yaml`` loading every .inter field (RecBole's default for a dataset of its
    own loads no timestamp, which sequential models sort by) and removes a ``NAME.itememb`` left
    from an earlier conversion, whose items may no longer match.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"load_col": {"inter": [c.partition(":")[0] for c in frames["inter"].columns]}}
    written = []
    try:
        for suffix, frame in frames.items():
            tmp = folder / f".{dataset_name}.{suffix}.{os.getpid()}.tmp"
            written.append((tmp, folder / f"{dataset_name}.{suffix}"))
            frame.to_csv(tmp, sep="\t", index=False, quoting=csv.QUOTE_NONE)
        tmp = folder / f".{dataset_name}.yaml.{os.getpid()}.tmp"
        written.append((tmp, dataset_settings_path(folder, dataset_name)))
        tmp.write_text(yaml.safe_dump(settings, sort_keys=False))
        for tmp, target in written:
            os.replace(tmp, target)
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
    stale = itememb_path(folder, dataset_name)
    if stale.is_file():
        stale.unlink()
        logger.info(f"removed {stale} of an earlier conversion: run `embed` again")


def _json_object(path, value_type, mapping):
    """A non-empty JSON object whose values are all ``value_type``, or one AlphaFuseError."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AlphaFuseError(f"{path} is not valid JSON ({error}); is the file complete?") from None
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(value, value_type) for value in data.values())
    ):
        raise AlphaFuseError(f"{path} must hold one non-empty JSON object mapping {mapping}.")
    return data


def convert_lcrec(input_dir, data_root, dataset_name):
    """Convert an LC-Rec layout folder into ``<data_root>/<dataset_name>/NAME.inter/.item``.

    The .inter file gets a ``timestamp`` column holding each interaction's position in the
    user's chronological list, so RecBole's time ordering keeps the original order.
    """
    sequences = _json_object(
        _single(input_dir, "*.inter.json"), list, "each user id to the list of its item ids"
    )
    items = _json_object(
        _single(input_dir, "*.item.json"), dict, "each item id to an object of its text fields"
    )
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


# The AlphaFuse / DreamRec layout: split -> pickled DataFrame of (seq, len_seq, next) examples.
ALPHAFUSE_FILES = dict(zip(BENCHMARK_SPLITS, ("train_data.df", "val_data.df", "test_data.df")))
ALPHAFUSE_STATISTICS = "data_statis.df"


def _read_frame(path, columns):
    try:
        frame = pd.read_pickle(path)
    except UNREADABLE_FILE_ERRORS as error:
        raise AlphaFuseError(
            f"cannot read {path} as a pickled DataFrame ({type(error).__name__}: {error})."
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise AlphaFuseError(f"{path} holds a {type(frame).__name__}, not a pandas DataFrame.")
    absent = [column for column in columns if column not in frame.columns]
    if absent:
        raise AlphaFuseError(
            f"{path} lacks the column(s) {absent}; its columns are {list(frame.columns)}."
        )
    return frame


def _whole_numbers(values, what):
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AlphaFuseError(f"{what} holds values that are not numbers ({error}).") from None
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        raise AlphaFuseError(f"{what} holds non-integer ids such as {values[bad][:5].tolist()}.")
    return values.astype(np.int64)


def _alphafuse_examples(path, split, seq_size, item_num):
    """``user_id``/``item_id_list``/``item_id`` rows of one split; empty histories left out."""
    frame = _read_frame(path, ["seq", "len_seq", "next"])
    sizes = [len(seq) if hasattr(seq, "__len__") else None for seq in frame["seq"]]
    wrong = [row for row, size in enumerate(sizes) if size != seq_size]
    if wrong:
        raise AlphaFuseError(
            f"{path}: row {wrong[0]} has a seq of {sizes[wrong[0]]} ids; every seq must be a "
            f"list of seq_size={seq_size} ids (padded with item_num={item_num})."
        )
    seqs = _whole_numbers(frame["seq"].tolist(), f"{path} column seq").reshape(-1, seq_size)
    targets = _whole_numbers(frame["next"], f"{path} column next")
    lengths = _whole_numbers(frame["len_seq"], f"{path} column len_seq")
    # In seq, item_num is the padding id; next must be a real item.
    for values, high, column in ((seqs, item_num, "seq"), (targets, item_num - 1, "next")):
        outside = values[(values < 0) | (values > high)]
        if outside.size:
            raise AlphaFuseError(
                f"{path}: column {column} holds ids outside [0, {high}] such as "
                f"{outside[:5].tolist()}; data_statis.df says item_num={item_num}."
            )
    real = seqs != item_num
    counts = real.sum(axis=1)
    # len_seq counts the history before its cut to seq_size; an empty history is stored as 1.
    consistent = (counts == np.minimum(lengths, seq_size)) | ((counts == 0) & (lengths == 1))
    if not consistent.all():
        row = int(np.flatnonzero(~consistent)[0])
        raise AlphaFuseError(
            f"{path}: row {row} has len_seq={lengths[row]} but {counts[row]} non-padding ids "
            f"in seq; is item_num={item_num} (the padding id) right?"
        )
    rows = [
        (f"{split}-{row}", [str(item) for item in seqs[row][real[row]]], str(targets[row]))
        for row in np.flatnonzero(counts > 0)
    ]
    if len(rows) < len(frame):
        # RecBole's sequential models need at least one item of history.
        logger.info(f"{path.name}: left out {len(frame) - len(rows)} examples with no history")
    if not rows:
        raise AlphaFuseError(f"{path} has no example with a non-empty history.")
    return pd.DataFrame(rows, columns=[USER_FIELD, ITEM_LIST_FIELD, ITEM_FIELD])


def convert_alphafuse(input_dir, data_root, dataset_name, embeddings=None):
    """Convert an AlphaFuse / DreamRec / PreferDiff data folder into a pre-split dataset.

    The folder holds pickled DataFrames ``train_data.df``, ``val_data.df``, ``test_data.df``
    (``seq``: the history padded to ``seq_size`` ids with the id ``item_num``, ``len_seq``,
    ``next``: the target), ``data_statis.df`` (``seq_size``, ``item_num``) and the language
    vectors ``<model>_emb.pickle`` (row i = item i; or ``embeddings``, any file of
    :func:`~recbole_alphafuse.data.own_vectors.load_vector_file`). Each example becomes a row of
    ``NAME.{train,valid,test}.inter`` with its own user token (``train-17``: row 17) and the
    item ids as tokens; ``NAME.itememb`` holds the vectors of the items used.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise AlphaFuseError(f"input folder {input_dir} not found.")
    target = Path(data_root) / dataset_name
    if target.exists():
        raise AlphaFuseError(
            f"{target} already exists: remove it (or choose another --dataset) to convert again."
        )
    missing = [
        name
        for name in (*ALPHAFUSE_FILES.values(), ALPHAFUSE_STATISTICS)
        if not (input_dir / name).is_file()
    ]
    if missing:
        raise AlphaFuseError(f"{input_dir} lacks {missing} of the AlphaFuse / DreamRec layout.")
    embeddings = embeddings or _single(
        input_dir, "*_emb.pickle", " Pass --embeddings FILE to name the item vectors."
    )
    statistics = _read_frame(input_dir / ALPHAFUSE_STATISTICS, ["seq_size", "item_num"])
    if statistics.empty:
        raise AlphaFuseError(f"{input_dir / ALPHAFUSE_STATISTICS} has no row.")
    seq_size, item_num = (
        int(_whole_numbers(statistics[column].iloc[:1], f"{ALPHAFUSE_STATISTICS} {column}")[0])
        for column in ("seq_size", "item_num")
    )
    if seq_size < 1 or item_num < 1:
        raise AlphaFuseError(
            f"{input_dir / ALPHAFUSE_STATISTICS}: seq_size={seq_size} and item_num={item_num} "
            "must be positive."
        )
    # This layout is pickles throughout (read only from trusted sources, see the command's help).
    vectors = as_matrix(load_vector_file(embeddings, trust=True), embeddings)
    if len(vectors) != item_num:
        raise AlphaFuseError(
            f"{embeddings} has {len(vectors)} rows but data_statis.df says item_num={item_num}; "
            "row i must be the vector of item i (pass the right file with --embeddings)."
        )
    splits = {
        split: _alphafuse_examples(input_dir / name, split, seq_size, item_num)
        for split, name in ALPHAFUSE_FILES.items()
    }
    items = sorted(benchmark_items(splits), key=int)
    item_vectors = vectors[[int(item) for item in items]]
    not_finite = [item for item, ok in zip(items, np.isfinite(item_vectors).all(axis=1)) if not ok]
    if not_finite:
        raise AlphaFuseError(
            f"{len(not_finite)} items have NaN/inf vectors in {embeddings} "
            f"(e.g. item ids {not_finite[:5]}); fix or recompute those vectors."
        )
    write_benchmark_dataset(
        target,
        dataset_name,
        splits,
        max_history=seq_size,
        extra_files=[(ITEMEMB_SUFFIX, lambda path: write_itememb(path, items, item_vectors))],
    )
    logger.info(f"{dataset_name}: {len(items)} of {item_num} items appear in the examples")
    return target


REVIEW_FIELDS = ("reviewerID", "asin", "unixReviewTime", "overall")
# .item text fields and how a list value is joined.
META_TEXT_FIELDS = {"title": ", ", "brand": ", ", "category": ", ", "description": " "}


def _json_lines(path):
    """``(line number, dict)`` of a JSON-lines file, gzip or plain, read one line at a time.

    Lines that are not JSON are read as Python literals, as in the older Amazon files.
    """
    with open(path, "rb") as probe:
        opener = gzip.open if probe.read(2) == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line.strip())
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        raise AlphaFuseError(
                            f"{path}, line {number}: neither JSON nor a Python literal "
                            f"({line[:80].strip()!r}...); fix or delete that line."
                        ) from None
                if not isinstance(record, dict):
                    raise AlphaFuseError(
                        f"{path}, line {number}: expected one JSON object per line, got a "
                        f"{type(record).__name__}."
                    )
                yield number, record
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise AlphaFuseError(f"cannot read {path} ({error}); is the file complete?") from None


def _read_reviews(path):
    users, items, ratings, times = [], [], [], []
    for number, record in _json_lines(path):
        absent = [field for field in REVIEW_FIELDS if field not in record]
        if absent:
            raise AlphaFuseError(
                f"{path}, line {number}: a review lacks {absent}; reviews need {REVIEW_FIELDS}."
            )
        try:
            ratings.append(float(record["overall"]))
            times.append(int(record["unixReviewTime"]))
        except (TypeError, ValueError):
            raise AlphaFuseError(
                f"{path}, line {number}: overall and unixReviewTime must be numbers."
            ) from None
        users.append(str(record["reviewerID"]))
        items.append(str(record["asin"]))
    return pd.DataFrame({"user": users, "item": items, "rating": ratings, "timestamp": times})


def _text(value, separator):
    # Lists (of lists, for the older "categories") are flattened; missing values are empty.
    if isinstance(value, (list, tuple)):
        return separator.join(filter(None, (_text(part, separator) for part in value)))
    return "" if value is None else _clean(value)


def _read_item_texts(path, wanted):
    """``{asin: [text of each META_TEXT_FIELDS field]}`` of the first entry of each wanted asin
    with some text."""
    texts = {}
    for number, record in _json_lines(path):
        if "asin" not in record:
            raise AlphaFuseError(f"{path}, line {number}: a metadata entry lacks 'asin'.")
        asin = str(record["asin"])
        if asin not in wanted or asin in texts:
            continue
        # The older files call the category field "categories".
        record.setdefault("category", record.get("categories"))
        text = [_text(record.get(field), sep) for field, sep in META_TEXT_FIELDS.items()]
        if any(text):
            texts[asin] = text
    return texts


def _k_core(inter, k):
    """Drop users and items with fewer than ``k`` interactions until none is left to drop."""
    while True:
        keep = (inter.groupby("user")["user"].transform("size") >= k) & (
            inter.groupby("item")["item"].transform("size") >= k
        )
        if keep.all():
            return inter
        inter = inter[keep]


def convert_amazon(reviews, meta, data_root, dataset_name, kcore=5):
    """Convert raw Amazon review + metadata JSON lines into ``NAME.inter`` and ``NAME.item``.

    Interactions of items without metadata text are dropped, then repeated (user, item) pairs
    (the earliest is kept), then users and items outside the ``kcore``-core. ``NAME.inter`` is in
    chronological order (file order among equal times); ``NAME.item`` holds ``title``,
    ``brand``, ``category`` and ``description`` of the items that remain.
    """
    for what, path in (("reviews", reviews), ("metadata", meta)):
        if not Path(path).is_file():
            raise AlphaFuseError(f"{what} file {path} not found.")
    if kcore < 1:
        raise AlphaFuseError(f"--kcore must be at least 1 (1: no filtering), got {kcore}.")
    inter = _read_reviews(reviews)
    texts = _read_item_texts(meta, set(inter["item"]))
    described = inter["item"].isin(texts)
    logger.info(
        f"read {len(inter)} reviews; dropped {int((~described).sum())} of "
        f"{inter.loc[~described, 'item'].nunique()} items without metadata text in {meta}"
    )
    inter = inter[described].sort_values("timestamp", kind="stable")
    if inter.empty:
        raise AlphaFuseError(
            f"no reviewed item of {reviews} has metadata text in {meta}: are they files of the "
            "same Amazon category?"
        )
    unique = inter.drop_duplicates(["user", "item"])
    inter = _k_core(unique, kcore)
    if inter.empty:
        raise AlphaFuseError(
            f"no interaction is left in the {kcore}-core of {reviews}: lower --kcore."
        )
    logger.info(
        f"dropped {int(described.sum()) - len(unique)} repeated reviews and "
        f"{len(unique) - len(inter)} outside the {kcore}-core"
    )
    items = list(dict.fromkeys(inter["item"]))
    item = pd.DataFrame(
        [[token] + texts[token] for token in items],
        columns=["item_id:token"] + [f"{field}:token_seq" for field in META_TEXT_FIELDS],
    )
    inter = inter.rename(
        columns={
            "user": "user_id:token",
            "item": "item_id:token",
            "rating": "rating:float",
            "timestamp": "timestamp:float",
        }
    )
    folder = Path(data_root) / dataset_name
    _write_frames({"inter": inter, "item": item}, folder, dataset_name)
    logger.info(
        f"wrote {folder}: {inter['user_id:token'].nunique()} users, {len(items)} items, "
        f"{len(inter)} interactions"
    )
    return folder
