"""The ``NAME.itememb`` atomic file: language vectors of items, checked on their way in and out.

Layout: a header ``iid:token<TAB>item_emb:float_seq`` then one row per item token, the vector's
numbers separated by spaces. RecBole loads it through ``preload_weight: {iid: item_emb}``.
"""

import warnings
from pathlib import Path

import numpy as np
import torch

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.files import written_atomically

# Where language vectors enter RecBole: the NAME.itememb atomic file, read as a preloaded weight.
ITEMEMB_SUFFIX = "itememb"
ITEMEMB_ID_FIELD = "iid"
ITEMEMB_VECTOR_FIELD = "item_emb"
HEADER = f"{ITEMEMB_ID_FIELD}:token\t{ITEMEMB_VECTOR_FIELD}:float_seq"


def uses_language_embeddings(model_class):
    """Whether a model reads the dataset's .itememb vectors: decided by its item-embedding strategy."""
    strategy = getattr(model_class, "item_embedding_class", None)
    return strategy is not None and strategy.uses_language_embeddings


def itememb_path(data_path, dataset_name):
    return Path(data_path) / f"{dataset_name}.{ITEMEMB_SUFFIX}"


def write_itememb(path, tokens, vectors):
    """Write ``tokens`` with their ``vectors`` atomically: a temp file renamed into place."""
    write_itememb_chunks(path, [(tokens, vectors)])


def write_itememb_chunks(path, chunks):
    """Write the ``(tokens, vectors)`` pairs of ``chunks`` one after another, atomically.

    Only one chunk is in memory at a time; the rows go to a temp file that is renamed into place
    once all are written, so ``path`` never appears half-written.
    """
    with written_atomically(path, "w") as f:
        f.write(HEADER + "\n")
        f.writelines(_itememb_rows(path, tokens, vectors) for tokens, vectors in chunks)


def _itememb_rows(path, tokens, vectors):
    """The text rows of ``tokens`` and their ``vectors`` (numbers formatted ``%.7g``)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(tokens) != len(vectors):
        raise AlphaFuseError(f"{len(tokens)} item tokens but {len(vectors)} vectors for {path}.")
    if not np.isfinite(vectors).all():
        raise AlphaFuseError(f"refusing to write NaN/inf vectors to {path}.")
    # One %-format per row formats all its numbers in C: twice as fast as one format per number.
    row_format = "\t" + " ".join(["%.7g"] * vectors.shape[-1]) + "\n"
    return "".join(
        str(token) + row_format % tuple(vector) for token, vector in zip(tokens, vectors.tolist())
    )


def check_itememb_header(path):
    """Fail with the fix if ``path`` lacks the fields RecBole is told to load from it."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
    if header != HEADER.split("\t"):
        raise AlphaFuseError(
            f"{path} has the header {header}; it must be exactly {HEADER.split(chr(9))} "
            "(tab-separated). Rewrite it with `python -m recbole_alphafuse embed` or fix the header."
        )


def check_itememb_rows(path):
    """Fail with the line to fix if a row of ``path`` would be misread by RecBole.

    RecBole raises a bare ValueError on a value that is not a number, silently zero-pads vectors
    shorter than the longest one, keeps the last of duplicated item tokens and fails obscurely on
    a file without rows. One pass over the file, each vector parsed once (in C); blank lines are
    skipped, as RecBole skips them.
    """
    _parse_itememb_rows(path, keep_vectors=False)


def read_itememb_rows(path):
    """The item tokens of ``path`` in file order and their vectors as one ``[n, d]`` float64
    matrix (the values RecBole's own parser gives), each row checked as
    :func:`check_itememb_rows` checks it and parsed once, in C."""
    return _parse_itememb_rows(path, keep_vectors=True)


def _parse_itememb_rows(path, keep_vectors):
    """Check every row of ``path``; return its tokens and, if ``keep_vectors``, the vectors
    stacked (else None)."""
    seen = {}
    vectors = []
    width, width_line = None, None
    with open(path, encoding="utf-8") as f, warnings.catch_warnings():
        # np.fromstring warns (DeprecationWarning) where it stops before the end of the text.
        warnings.simplefilter("error", DeprecationWarning)
        f.readline()
        for number, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise _row_error(
                    path,
                    number,
                    f"has {len(fields)} tab-separated fields instead of 2 (token, vector)",
                )
            token, vector = fields
            if not token:
                raise _row_error(path, number, "has no item token")
            if token in seen:
                raise _row_error(
                    path,
                    number,
                    f"repeats the item token '{token}' of line {seen[token]}; keep one vector "
                    "per item",
                )
            seen[token] = number
            try:
                values = np.fromstring(vector, sep=" ")
            except (DeprecationWarning, ValueError):
                raise _row_error(
                    path, number, f"holds '{_first_non_number(vector)}', which is not a number"
                ) from None
            if len(values) == 0:
                raise _row_error(path, number, "has an empty vector")
            if width is None:
                width, width_line = len(values), number
            if len(values) != width:
                raise _row_error(
                    path,
                    number,
                    f"has a vector of {len(values)} numbers but line {width_line} has {width}; "
                    "every item needs a vector of the same length",
                )
            if keep_vectors:
                vectors.append(values)
    if not seen:
        raise AlphaFuseError(
            f"{path} has no rows after its header: write the vectors with "
            "`python -m recbole_alphafuse embed` (or delete the file to have it built)."
        )
    return list(seen), np.stack(vectors) if keep_vectors else None


def _row_error(path, number, problem):
    return AlphaFuseError(
        f"{path}, line {number} {problem}. Fix that line or re-create the file with "
        "`python -m recbole_alphafuse embed`."
    )


def _first_non_number(vector):
    for part in vector.split():
        try:
            float(part)
        except ValueError:
            return part
    return vector[:40]


def check_no_extra_items(dataset):
    """Fail if the .itememb file holds item tokens that have no interaction.

    RecBole gives such tokens item ids anyway, so they would become ghost candidates in full
    ranking. ``dataset`` is the whole (filtered, unsplit) RecBole Dataset; without an .itememb
    file there is nothing to check.
    """
    item_field = dataset.iid_field
    feat = getattr(dataset, f"{ITEMEMB_SUFFIX}_feat", None)
    if feat is None:
        return
    with_vectors = set(feat[ITEMEMB_ID_FIELD].tolist())
    interacted = set(dataset.inter_feat[item_field].tolist())
    history_field = item_field + dataset.config["LIST_SUFFIX"]
    if history_field in dataset.inter_feat:
        # Pre-split benchmark files: items may appear in histories only.
        for history in dataset.inter_feat[history_field]:
            interacted.update(np.asarray(history).tolist())
    extra = sorted(with_vectors - interacted)
    if extra:
        raise AlphaFuseError(
            f"{len(extra)} item tokens in {dataset.dataset_name}.{ITEMEMB_SUFFIX} have no "
            f"interaction left after filtering (e.g. {list(dataset.id2token(item_field, extra[:5]))}); "
            "they would become ghost candidates in full ranking. Write vectors only for the items "
            "of the filtered .inter: rerun `python -m recbole_alphafuse embed` or drop those rows."
        )


def language_embeddings(dataset):
    """The ``[n_items, d]`` float32 language matrix of a RecBole Dataset; row 0 ([PAD]) is zero.

    Fails before training if the file was not loaded, or if a vector is missing or not finite.
    """
    item_field = dataset.iid_field
    weight = dataset.get_preload_weight(ITEMEMB_ID_FIELD) if _has_preload(dataset) else None
    if weight is None:
        raise AlphaFuseError(
            f"dataset '{dataset.dataset_name}' has no language embeddings: this model needs "
            f"{dataset.dataset_name}.{ITEMEMB_SUFFIX} beside its .inter file. Create it with "
            f"`python -m recbole_alphafuse embed --dataset {dataset.dataset_name}`."
        )
    weight = np.asarray(weight, dtype=np.float64)
    bad = ~np.isfinite(weight).all(axis=1)
    missing = ~weight.any(axis=1)
    missing[0] = False
    for mask, what in ((bad, "NaN or inf values"), (missing, "no vector (or an all-zero one)")):
        if mask.any():
            ids = np.flatnonzero(mask)
            raise AlphaFuseError(
                f"{len(ids)} items have {what} in {dataset.dataset_name}.{ITEMEMB_SUFFIX} "
                f"(e.g. item tokens {list(dataset.id2token(item_field, ids[:5]))}). "
                "Re-create the file with `python -m recbole_alphafuse embed` "
                "or supply a vector for every item of the .inter file."
            )
    return torch.from_numpy(weight).float()


def _has_preload(dataset):
    return ITEMEMB_ID_FIELD in (dataset.config["preload_weight"] or {})
