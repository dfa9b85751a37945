"""Language vectors through trainable adapters: MoRec, WhitenRec and UniSRec's item embeddings."""

import torch
import torch.nn.functional as F
from torch import nn

from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.model.decomposition import whitened_language
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding


class AdapterItemEmbedding(ItemEmbedding):
    """Frozen language vectors (PCA-whitened first if ``whiten``) mapped by a trainable ``adapter``
    to ``hidden_size``; [PAD] maps to zero. Subclasses choose ``whiten`` and build the adapter."""

    uses_language_embeddings = True
    whiten = False

    def __init__(self, language, hidden_size):
        super().__init__()
        if self.whiten:
            language = whitened_language(language, language.shape[1])
        self.register_buffer("language", language, persistent=False)
        self.hidden_size = hidden_size
        self.adapter = self.build_adapter(language.shape[1], hidden_size)

    def build_adapter(self, language_dim, hidden_size):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(language_embeddings(dataset), width or config["hidden_size"])

    @property
    def embedding_dim(self):
        return self.hidden_size

    def forward(self, item_ids):
        return self.adapter(self.language[item_ids]) * (item_ids != 0).unsqueeze(-1)

    @property
    def weight(self):
        return F.pad(self.adapter(self.language[1:]), (0, 0, 1, 0))


class MoRecItemEmbedding(AdapterItemEmbedding):
    """MoRec (Yuan et al., SIGIR 2023): frozen language vector -> Linear + GELU."""

    def build_adapter(self, language_dim, hidden_size):
        return nn.Sequential(nn.Linear(language_dim, hidden_size), nn.GELU())


class WhitenRecItemEmbedding(MoRecItemEmbedding):
    """WhitenRec (Zhang et al., ICDE 2024): PCA-whitened language vector -> Linear + GELU."""

    whiten = True


class MoEAdapter(nn.Module):
    """UniSRec's mixture of parametric-whitening experts: sum_k g_k(x) (x - b_k) W_k."""

    def __init__(self, language_dim, hidden_size, n_experts):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_experts, language_dim))
        self.proj = nn.Parameter(
            torch.empty(n_experts, language_dim, hidden_size).normal_(0.0, 0.02)
        )
        self.gate = nn.Linear(language_dim, n_experts)

    def forward(self, x):
        gates = torch.softmax(self.gate(x), dim=-1)
        experts = torch.einsum("...kd,kdh->...kh", x.unsqueeze(-2) - self.bias, self.proj)
        return (gates.unsqueeze(-1) * experts).sum(-2)


class UniSRecItemEmbedding(AdapterItemEmbedding):
    """UniSRec (Hou et al., KDD 2022): language vector -> mixture-of-experts adapter (``n_experts``)."""

    def __init__(self, language, hidden_size, *, n_experts):
        self.n_experts = n_experts
        super().__init__(language, hidden_size)

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(
            language_embeddings(dataset),
            width or config["hidden_size"],
            n_experts=config["n_experts"],
        )

    def build_adapter(self, language_dim, hidden_size):
        return MoEAdapter(language_dim, hidden_size, self.n_experts)
