"""SASRec as a backbone over any item-embedding strategy."""

import torch
from recbole.model.abstract_recommender import SequentialRecommender

from recbole_alphafuse.data.windows import (
    SCORED_POSITIONS_FIELD,
    TRAIN_POSITIONS,
    check_train_positions,
)
from recbole_alphafuse.model.loss import NextItemLoss, resolve_loss_type, uniform_negatives
from recbole_alphafuse.model.sequence_encoder import build_sequence_encoder, in_length_groups


class SASRecBackbone(SequentialRecommender):
    r"""SASRec (Kang and McAuley, ICDM 2018) with a pluggable item embedding.

    A causal Transformer over the history (``encoder``: RecBole's SASRec layers, or the AlphaFuse
    authors' reference block, see :mod:`~recbole_alphafuse.model.sequence_encoder`) reading item
    vectors from ``item_embedding_class`` (an :class:`ItemEmbedding` strategy) instead of its own
    ID table.
    Registered models subclass it and name their strategy; ``loss_type`` is ``CE``,
    ``SampledSoftmax``, ``gBCE``, ``BPR`` or ``InfoNCE`` (see :class:`NextItemLoss`), or
    ``auto``: CE up to ``sampled_above_items`` items, the sampled softmax above
    (:func:`resolve_loss_type`).
    ``train_positions``: ``last`` trains RecBole's rows (one target each, at the last position);
    ``all`` trains windows with a loss at every position
    (:mod:`recbole_alphafuse.data.windows`). Histories are encoded in groups of similar length
    (:func:`in_length_groups`), so short histories cost little in a long window. Ranking is the
    raw dot product with every item.
    """

    item_embedding_class = None
    supported_train_positions = TRAIN_POSITIONS

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        check_train_positions(config, type(self))

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
        loss_type = resolve_loss_type(
            config["loss_type"], self.n_items, config["sampled_above_items"]
        )
        if loss_type != config["loss_type"]:
            pool = f" of {config['n_negatives']:,} negatives" if loss_type != "CE" else ""
            self.logger.info(
                f"loss_type {config['loss_type']}: {loss_type}{pool} for {self.n_items - 1:,} "
                f"items (sampled_above_items: {config['sampled_above_items']:,})"
            )
        return NextItemLoss(
            loss_type,
            self.n_items,
            temperature=config["temperature"],
            neg_ratio=config["neg_ratio"],
            ce_chunk_size=config["ce_chunk_size"],
            n_negatives=config["n_negatives"],
            gbce_t=config["gbce_t"],
        )

    def encode(self, item_emb, item_seq):
        """The causal encoder over embedded sequences: states at every position."""
        return in_length_groups(self.sequence_encoder, item_emb, item_seq)

    def states(self, item_seq):
        """The encoder's state at every position of the histories: ``[B, L, width]``."""
        return self.encode(self.item_embedding(item_seq), item_seq)

    def forward(self, item_seq, item_seq_len):
        """The state at each history's last item: ``[B, width]``."""
        return in_length_groups(
            self.sequence_encoder.last_state,
            self.item_embedding(item_seq),
            item_seq,
            last_only=True,
        )

    def scored_states(self, interaction):
        """``train_positions: all``: the states of each window's scored positions and their next
        items (the window's own next item, the row's target at its last position)."""
        item_seq, lengths = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        next_items = torch.cat([item_seq[:, 1:], torch.zeros_like(item_seq[:, :1])], dim=1)
        next_items.scatter_(1, (lengths - 1).unsqueeze(1), interaction[self.POS_ITEM_ID][:, None])
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        first_scored = lengths - interaction[SCORED_POSITIONS_FIELD]
        scored = (positions < lengths[:, None]) & (positions >= first_scored[:, None])
        return self.states(item_seq)[scored], next_items[scored]

    def training_states(self, interaction):
        """The states a batch trains and their next items: every scored position of windows
        (``train_positions: all``, which carry their scored-position counts), or the last
        position of RecBole's rows."""
        if SCORED_POSITIONS_FIELD in interaction:
            return self.scored_states(interaction)
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return seq_output, interaction[self.POS_ITEM_ID]

    def calculate_loss(self, interaction):
        seq_output, pos_items = self.training_states(interaction)
        neg_items = None
        if SCORED_POSITIONS_FIELD in interaction:
            if self.loss_fct.loss_type == "BPR":
                # One sampled negative per row cannot serve every position: uniform ones.
                neg_items = uniform_negatives(pos_items, self.n_items, 1).squeeze(1)
        elif self.NEG_ITEM_ID in interaction:
            neg_items = interaction[self.NEG_ITEM_ID]
        loss = self.loss_fct(seq_output, pos_items, self.item_embedding, neg_items)
        return loss + self.item_embedding.auxiliary_loss(pos_items)

    def predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (seq_output * self.item_embedding(interaction[self.ITEM_ID])).sum(dim=-1)

    def full_sort_query(self, interaction):
        """What every item is scored against by its dot product (see
        :mod:`recbole_alphafuse.ranking`): the state at each history's last item."""
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def full_sort_predict(self, interaction):
        return self.full_sort_query(interaction) @ self.item_embedding.weight.T
