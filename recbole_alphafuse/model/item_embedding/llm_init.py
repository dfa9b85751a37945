"""ID tables that start from, or are pulled towards, the language embeddings: LLMInit and RLMRec."""

import torch
import torch.nn.functional as F
from torch import nn

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.model.decomposition import whitened_language
from recbole_alphafuse.model.item_embedding.id import IDItemEmbedding
from recbole_alphafuse.model.loss import paired_info_nce

RLMREC_VARIANTS = ("con", "gen")


class LLMInitItemEmbedding(IDItemEmbedding):
    """LLMInit: a trainable ID table initialised with the language embeddings reduced to
    ``hidden_size`` by whitened PCA, times ``semantic_scale``; then trained like any ID table."""

    uses_language_embeddings = True

    def __init__(self, language, hidden_size, *, semantic_scale):
        # The random table is replaced by the language one below.
        super().__init__(language.shape[0], hidden_size, initializer_range=0.0)
        with torch.no_grad():
            self.embedding.weight.copy_(whitened_language(language, hidden_size, semantic_scale))

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(
            language_embeddings(dataset),
            width or config["hidden_size"],
            semantic_scale=config["semantic_scale"],
        )


class RLMRecItemEmbedding(IDItemEmbedding):
    """RLMRec (Ren et al., WWW 2024): ID embeddings plus an auxiliary loss (weight ``rlm_beta``)
    aligning them with the language embeddings through a small MLP.

    ``con``: contrastive, MLP(language) against the ID vectors of the batch's items (InfoNCE,
    ``rlm_temperature``). ``gen``: generative, MLP(ID) reconstructs the language vector (cosine).
    """

    uses_language_embeddings = True

    def __init__(
        self,
        language,
        hidden_size,
        *,
        variant,
        beta,
        temperature,
        initializer_range,
    ):
        super().__init__(language.shape[0], hidden_size, initializer_range=initializer_range)
        if variant not in RLMREC_VARIANTS:
            raise AlphaFuseError(f"rlm_variant must be one of {RLMREC_VARIANTS}, got '{variant}'.")
        self.register_buffer("language", language, persistent=False)
        self.variant, self.beta, self.temperature = variant, beta, temperature
        source, target = (
            (language.shape[1], hidden_size)
            if variant == "con"
            else (hidden_size, language.shape[1])
        )
        self.mlp = nn.Sequential(
            nn.Linear(source, (source + target) // 2),
            nn.LeakyReLU(),
            nn.Linear((source + target) // 2, target),
        )

    @classmethod
    def from_config(cls, config, dataset, width=None):
        return cls(
            language_embeddings(dataset),
            width or config["hidden_size"],
            variant=config["rlm_variant"],
            beta=config["rlm_beta"],
            temperature=config["rlm_temperature"],
            initializer_range=config["initializer_range"],
        )

    def auxiliary_loss(self, item_ids):
        items = item_ids.unique()
        items = items[items != 0]
        ids = self.embedding(items)
        if self.variant == "gen":
            return (
                self.beta
                * (1 - F.cosine_similarity(self.mlp(ids), self.language[items], dim=-1)).mean()
            )
        return self.beta * paired_info_nce(ids, self.mlp(self.language[items]), self.temperature)
