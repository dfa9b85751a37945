"""AlphaFuse on RecBole's own sequential models: their item table swapped for the AlphaFuse strategy.

Any RecBole sequential model whose items enter through ``self.item_embedding`` (called on ids, and
``.weight`` for the full table) takes a strategy the same way: subclass it, name the strategy in
``item_embedding_class`` (which also tells the Config to load the ``.itememb`` file), and replace
``self.item_embedding`` after RecBole's constructor. Its RecBole defaults still apply, then the strategy's yaml.
"""

from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec

from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    MaskTokenItemEmbedding,
)


class AlphaFuseGRU4Rec(GRU4Rec):
    r"""AlphaFuse on GRU4Rec (Hidasi et al., ICLR 2016; Hu et al., SIGIR 2025).

    RecBole's GRU4Rec with AlphaFuse item embeddings of width ``embedding_size`` (frozen whitened
    language part, trainable ID part of width ``null_dim`` in its null space); no other change.
    """

    item_embedding_class = AlphaFuseItemEmbedding

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.item_embedding = self.item_embedding_class.from_config(
            config, dataset, width=config["embedding_size"]
        )

    def full_sort_query(self, interaction):
        """The GRU's last state, which every item is scored against by its dot product."""
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])


class AlphaFuseBERT4Rec(BERT4Rec):
    r"""AlphaFuse on BERT4Rec (Sun et al., CIKM 2019; Hu et al., SIGIR 2025).

    RecBole's BERT4Rec with AlphaFuse item embeddings of width ``hidden_size``; the [MASK] token
    (id ``n_items``) keeps a trainable vector of its own.
    """

    item_embedding_class = AlphaFuseItemEmbedding

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.item_embedding = MaskTokenItemEmbedding(
            self.item_embedding_class.from_config(config, dataset),
            self.n_items,
            initializer_range=config["initializer_range"],
        )
