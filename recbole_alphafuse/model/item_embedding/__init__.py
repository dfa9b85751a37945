"""Item-embedding strategies: how an item id becomes a vector.

A strategy is an ``nn.Module`` that a backbone uses exactly where RecBole models use
``self.item_embedding``: calling it on item ids gives their embeddings, and ``.weight`` gives the
full ``[n_items, hidden_size]`` table (built once per call, for full ranking and CE).
"""

from recbole_alphafuse.model.item_embedding.alphafuse import AlphaFuseItemEmbedding
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding

__all__ = ["ItemEmbedding", "AlphaFuseItemEmbedding"]
