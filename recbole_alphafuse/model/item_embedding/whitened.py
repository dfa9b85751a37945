"""Frozen whitened language embeddings, no ID part (WhitenedDreamRec's items; the AlphaFuse paper's iDreamRec)."""

from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.model.decomposition import whitened_language
from recbole_alphafuse.model.item_embedding.base import ItemEmbedding


class WhitenedItemEmbedding(ItemEmbedding):
    """Item vectors = the items' language embeddings, centred, projected on the top
    ``hidden_size`` eigendirections (all of them when ``hidden_size`` is ~) and whitened, times
    ``semantic_scale``. Nothing is trained."""

    uses_language_embeddings = True

    def __init__(self, language, hidden_size, *, semantic_scale):
        super().__init__()
        table = whitened_language(language, hidden_size, semantic_scale)
        self.register_buffer("table", table, persistent=False)

    @classmethod
    def from_config(cls, config, dataset, width=None):
        language = language_embeddings(dataset)
        width = width or config["hidden_size"] or language.shape[1]
        return cls(language, width, semantic_scale=config["semantic_scale"])

    @property
    def embedding_dim(self):
        return self.table.shape[1]

    def forward(self, item_ids):
        return self.table[item_ids]

    @property
    def weight(self):
        return self.table
