"""SASRec as a backbone over any item-embedding strategy."""

from recbole.model.abstract_recommender import SequentialRecommender

from recbole_alphafuse.model.loss import NextItemLoss
from recbole_alphafuse.model.sequence_encoder import build_sequence_encoder


class SASRecBackbone(SequentialRecommender):
    r"""SASRec (Kang and McAuley, ICDM 2018) with a pluggable item embedding.

    A causal Transformer over the history (``encoder``: RecBole's SASRec layers, or the AlphaFuse
    authors' reference block, see :mod:`~recbole_alphafuse.model.sequence_encoder`) reading item
    vectors from ``item_embedding_class`` (an :class:`ItemEmbedding` strategy) instead of its own
    ID table.
    Registered models subclass it and name their strategy; ``loss_type`` is ``CE``, ``BPR`` or
    ``InfoNCE`` (see :class:`NextItemLoss`). Ranking is the raw dot product with every item.
    """

    item_embedding_class = None

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        self.item_embedding = self.item_embedding_class.from_config(config, dataset)
        self.hidden_size = self.encoder_width()
        self.n_heads = config["n_heads"]
        self.attn_dropout_prob = config["attn_dropout_prob"]
        self.initializer_range = config["initializer_range"]
        self.sequence_encoder = build_sequence_encoder(
            config, self.hidden_size, self.max_seq_length
        )
        self.loss_fct = self.build_loss(config)

    def encoder_width(self):
        """The strategy fixes the width (e.g. the language dimension when hidden_size is ~)."""
        return self.item_embedding.embedding_dim

    def build_loss(self, config):
        return NextItemLoss(
            config["loss_type"],
            self.n_items,
            temperature=config["temperature"],
            neg_ratio=config["neg_ratio"],
        )

    def encode(self, item_emb, item_seq):
        """The causal encoder over embedded sequences: states at every position."""
        return self.sequence_encoder(item_emb, item_seq)

    def forward(self, item_seq, item_seq_len):
        output = self.encode(self.item_embedding(item_seq), item_seq)
        return self.gather_indexes(output, item_seq_len - 1)

    def calculate_loss(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        pos_items = interaction[self.POS_ITEM_ID]
        loss = self.loss_fct(
            seq_output,
            pos_items,
            self.item_embedding,
            interaction[self.NEG_ITEM_ID] if self.NEG_ITEM_ID in interaction else None,
        )
        return loss + self.item_embedding.auxiliary_loss(pos_items)

    def predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (seq_output * self.item_embedding(interaction[self.ITEM_ID])).sum(dim=-1)

    def full_sort_predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return seq_output @ self.item_embedding.weight.T
