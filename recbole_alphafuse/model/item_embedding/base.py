"""The interface every item-embedding strategy implements."""

from torch import nn


class ItemEmbedding(nn.Module):
    """Base class of item-embedding strategies.

    Subclasses implement ``forward(item_ids) -> [..., embedding_dim]``, the ``weight`` property
    (the whole table, row 0 = [PAD]), ``embedding_dim`` and ``from_config(config, dataset)``; they set
    ``uses_language_embeddings`` when they read the dataset's ``.itememb`` vectors.
    """

    uses_language_embeddings = False

    @classmethod
    def from_config(cls, config, dataset, width=None):
        """Build for ``dataset``; ``width`` overrides the config's ``hidden_size``."""
        raise NotImplementedError

    @property
    def weight(self):
        raise NotImplementedError

    def auxiliary_loss(self, item_ids):
        """Extra training loss over the batch's items (RLMRec's alignment); none by default."""
        return 0.0

    @property
    def embedding_dim(self):
        """Width of the item vectors this strategy gives."""
        raise NotImplementedError
