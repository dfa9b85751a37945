"""An extra trainable [MASK] row after any strategy's items, for masked-item models (BERT4Rec)."""

import torch
from torch import nn

from recbole_alphafuse.model.item_embedding.base import ItemEmbedding


class MaskTokenItemEmbedding(ItemEmbedding):
    """``items`` (a strategy over ids ``0..n_items-1``) plus one trainable vector at id ``n_items``,
    as BERT4Rec's table of ``n_items + 1`` rows expects."""

    def __init__(self, items, n_items, *, initializer_range):
        super().__init__()
        self.items = items
        self.n_items = n_items
        self.mask_token = nn.Parameter(
            torch.empty(items.embedding_dim).normal_(0.0, initializer_range)
        )

    @property
    def embedding_dim(self):
        return self.items.embedding_dim

    def forward(self, item_ids):
        is_mask = (item_ids == self.n_items).unsqueeze(-1)
        embedded = self.items(item_ids.clamp_max(self.n_items - 1))
        return torch.where(is_mask, self.mask_token.expand_as(embedded), embedded)

    @property
    def weight(self):
        return torch.cat([self.items.weight, self.mask_token.unsqueeze(0)])
