"""AlphaFuse item embeddings: frozen whitened language part + trainable ID part in its null space."""

import torch
import torch.nn.functional as F
from torch import nn

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.model.decomposition import decompose_language_space
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding

# Initialisers of the ID table: (weight, id_init_std) -> None.
ID_INITS = {
    "zeros": lambda weight, std: nn.init.zeros_(weight),
    "normal": lambda weight, std: nn.init.normal_(weight, 0.0, std),  # as RecBole's embeddings
    "xavier_normal": lambda weight, std: nn.init.xavier_normal_(weight),
    "xavier_uniform": lambda weight, std: nn.init.xavier_uniform_(weight),
}
DECOMPOSITION_WEIGHTINGS = ("uniform", "popularity")


class AlphaFuseItemEmbedding(ItemEmbedding):
    r"""Item embeddings of AlphaFuse (Hu et al., SIGIR 2025).

    The language embeddings are decomposed once (:func:`decompose_language_space`); the kept,
    optionally whitened coordinates form a frozen buffer (rebuilt from the dataset, never saved or
    optimised), multiplied by ``semantic_scale`` (one scalar, trained if
    ``train_semantic_scale``). A trainable ID table of width ``null_dim`` is added to
    the last ``null_dim`` coordinates, the lowest-variance kept directions (or, with ``cover``,
    concatenated after ``hidden_size - null_dim`` semantic coordinates). Row 0 ([PAD]) is zero.
    """

    uses_language_embeddings = True

    def __init__(
        self,
        language,
        hidden_size,
        *,
        null_dim,
        null_thres,
        language_scale,
        standardization,
        cover,
        semantic_scale,
        id_init,
        id_init_std,
        train_semantic_scale,
        item_weights=None,
    ):
        super().__init__()
        if id_init not in ID_INITS:
            raise AlphaFuseError(f"id_init must be one of {list(ID_INITS)}, got '{id_init}'.")
        decomposition = decompose_language_space(
            language[1:],
            hidden_size,
            null_dim=null_dim,
            null_thres=null_thres,
            scale=language_scale,
            weights=None if item_weights is None else item_weights[1:],
            standardization=standardization,
            cover=cover,
            semantic_dtype=torch.float32,
        )
        if decomposition.null_dim == 0:
            raise AlphaFuseError(
                "AlphaFuse needs a null space of at least 1 dimension for the ID part, got 0"
                + (
                    f" from null_thres={null_thres}: raise null_thres."
                    if null_thres is not None
                    else ": set null_dim >= 1."
                )
            )
        self.hidden_size = hidden_size
        self.null_dim = decomposition.null_dim
        self.cover = cover
        semantic = torch.zeros(language.shape[0], decomposition.semantic.shape[1])
        semantic[1:] = decomposition.semantic
        self.register_buffer("semantic", semantic, persistent=False)
        # One scalar gain; the semantic directions themselves stay frozen.
        gain = torch.tensor(float(semantic_scale))
        if train_semantic_scale:
            self.semantic_scale = nn.Parameter(gain)
        else:
            self.register_buffer("semantic_scale", gain, persistent=False)
        self.id_embedding = nn.Embedding(language.shape[0], self.null_dim, padding_idx=0)
        ID_INITS[id_init](self.id_embedding.weight, id_init_std)
        with torch.no_grad():
            self.id_embedding.weight[0].zero_()

    @classmethod
    def from_config(cls, config, dataset, width=None):
        """Build from the config; ``width`` defaults to ``hidden_size``, and to the language
        dimension when that is ~."""
        weighting = config["decomposition_weighting"]
        if weighting not in DECOMPOSITION_WEIGHTINGS:
            raise AlphaFuseError(
                f"decomposition_weighting must be one of {DECOMPOSITION_WEIGHTINGS}, "
                f"got '{weighting}'."
            )
        item_weights = None
        if weighting == "popularity":
            counter = dataset.item_counter
            item_weights = torch.tensor([counter[i] for i in range(dataset.item_num)])
        language = language_embeddings(dataset)
        return cls(
            language,
            width or config["hidden_size"] or language.shape[1],
            null_dim=config["null_dim"],
            null_thres=config["null_thres"],
            language_scale=config["language_scale"],
            item_weights=item_weights,
            standardization=config["standardization"],
            cover=config["cover"],
            semantic_scale=config["semantic_scale"],
            id_init=config["id_init"],
            id_init_std=config["id_init_std"],
            train_semantic_scale=config["train_semantic_scale"],
        )

    def _fuse(self, semantic, ids):
        if self.cover:
            return torch.cat([semantic, ids], dim=-1)
        split = self.hidden_size - self.null_dim
        return torch.cat([semantic[..., :split], semantic[..., split:] + ids], dim=-1)

    @property
    def embedding_dim(self):
        return self.hidden_size

    def forward(self, item_ids):
        return self._fuse(
            self.semantic[item_ids] * self.semantic_scale, self.id_embedding(item_ids)
        )

    @torch.no_grad()
    def part_norms(self):
        """Mean L2 norm over the real items of the frozen semantic part (scaled) and of the
        trainable ID part: the balance between the two, which a loss may tip."""
        semantic = (self.semantic[1:] * self.semantic_scale).norm(dim=-1).mean().item()
        ids = self.id_embedding.weight[1:].norm(dim=-1).mean().item()
        return {"semantic": semantic, "id": ids}

    @property
    def weight(self):
        # Row 0 rebuilt as zeros: reading .weight directly would bypass padding_idx and let
        # full-table losses train the [PAD] row.
        ids = F.pad(self.id_embedding.weight[1:], (0, 0, 1, 0))
        return self._fuse(self.semantic * self.semantic_scale, ids)
