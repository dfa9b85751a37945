"""LLM-ESR's two item views: a collaborative ID view and an adapted semantic (language) view."""

import torch
import torch.nn.functional as F
from torch import nn

from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.model.decomposition import whitened_language
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding
from recbole_alphafuse.model.loss import paired_info_nce


class LLMESRItemEmbedding(ItemEmbedding):
    """Item vector = [ID view ; semantic view], each ``hidden_size // 2`` wide.

    The ID view is a trainable table initialised from the whitened, PCA-reduced language
    embeddings times ``semantic_scale``; the semantic view maps the frozen language vectors through
    a trainable two-layer adapter. ``auxiliary_loss`` contrasts the two views of the batch's items
    (InfoNCE, ``dual_view_temperature``, weight ``dual_view_beta``).
    """

    uses_language_embeddings = True

    def __init__(self, language, hidden_size, *, semantic_scale, beta, temperature):
        super().__init__()
        self.view_size = hidden_size // 2
        self.beta, self.temperature = beta, temperature
        self.register_buffer("language", language, persistent=False)
        self.id_view = nn.Embedding(language.shape[0], self.view_size, padding_idx=0)
        with torch.no_grad():
            self.id_view.weight.copy_(whitened_language(language, self.view_size, semantic_scale))
        middle = (language.shape[1] + self.view_size) // 2
        self.adapter = nn.Sequential(
            nn.Linear(language.shape[1], middle), nn.GELU(), nn.Linear(middle, self.view_size)
        )

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(
            language_embeddings(dataset),
            width or config["hidden_size"],
            semantic_scale=config["semantic_scale"],
            beta=config["dual_view_beta"],
            temperature=config["dual_view_temperature"],
        )

    @property
    def embedding_dim(self):
        return 2 * self.view_size

    def views(self, item_ids):
        """(ID view, semantic view) of ``item_ids``; [PAD] is zero in both."""
        semantic = self.adapter(self.language[item_ids]) * (item_ids != 0).unsqueeze(-1)
        return self.id_view(item_ids), semantic

    def forward(self, item_ids):
        return torch.cat(self.views(item_ids), dim=-1)

    @property
    def weight(self):
        ids = F.pad(self.id_view.weight[1:], (0, 0, 1, 0))
        semantic = F.pad(self.adapter(self.language[1:]), (0, 0, 1, 0))
        return torch.cat([ids, semantic], dim=-1)

    def auxiliary_loss(self, item_ids):
        items = item_ids.unique()
        ids, semantic = self.views(items[items != 0])
        return self.beta * paired_info_nce(ids, semantic, self.temperature)
