"""Item-embedding strategies: how an item id becomes a vector.

A strategy is an ``nn.Module`` that a backbone uses exactly where RecBole models use
``self.item_embedding``: calling it on item ids gives their embeddings, and ``.weight`` gives the
full ``[n_items, embedding_dim]`` table (built once per call, for full ranking and CE).
"""

from recbole_alphafuse.model.item_embedding.adapter import (
    MoRecItemEmbedding,
    UniSRecItemEmbedding,
    WhitenRecItemEmbedding,
)
from recbole_alphafuse.model.item_embedding.alphafuse import AlphaFuseItemEmbedding
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding
from recbole_alphafuse.model.item_embedding.id import IDItemEmbedding
from recbole_alphafuse.model.item_embedding.llm_esr import LLMESRItemEmbedding
from recbole_alphafuse.model.item_embedding.llm_init import (
    LLMInitItemEmbedding,
    RLMRecItemEmbedding,
)
from recbole_alphafuse.model.item_embedding.mask_token import MaskTokenItemEmbedding
from recbole_alphafuse.model.item_embedding.whitened import (
    WhitenedItemEmbedding,
)

__all__ = [
    "AlphaFuseItemEmbedding",
    "LLMESRItemEmbedding",
    "IDItemEmbedding",
    "ItemEmbedding",
    "LLMInitItemEmbedding",
    "MaskTokenItemEmbedding",
    "MoRecItemEmbedding",
    "RLMRecItemEmbedding",
    "UniSRecItemEmbedding",
    "WhitenRecItemEmbedding",
    "WhitenedItemEmbedding",
]
