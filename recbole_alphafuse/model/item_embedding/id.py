"""Plain item ID embeddings: one trainable vector per item."""

import torch.nn.functional as F
from torch import nn

from recbole_alphafuse.model.item_embedding.base import ItemEmbedding


class IDItemEmbedding(ItemEmbedding):
    """A trainable ``[n_items, hidden_size]`` table, normal(0, ``initializer_range``) as in RecBole."""

    def __init__(self, n_items, hidden_size, *, initializer_range):
        super().__init__()
        self.embedding = nn.Embedding(n_items, hidden_size, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0.0, initializer_range)
        self.embedding.weight.data[0].zero_()

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(
            dataset.item_num,
            width or config["hidden_size"],
            initializer_range=config["initializer_range"],
        )

    @property
    def embedding_dim(self):
        return self.embedding.embedding_dim

    def forward(self, item_ids):
        return self.embedding(item_ids)

    @property
    def weight(self):
        # Row 0 rebuilt as zeros so full-table losses never train [PAD].
        return F.pad(self.embedding.weight[1:], (0, 0, 1, 0))
