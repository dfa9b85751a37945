"""SASRec as a backbone over any item-embedding strategy."""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import TransformerEncoder
from torch import nn

from recbole_alphafuse.model.loss import NextItemLoss


class SASRecBackbone(SequentialRecommender):
    r"""SASRec (Kang and McAuley, ICDM 2018) with a pluggable item embedding.

    RecBole's SASRec encoder (same layers, initialisation and scoring) reading item vectors from
    ``item_embedding_class`` (an :class:`ItemEmbedding` strategy) instead of its own ID table.
    Registered models subclass it and name their strategy; ``loss_type`` is ``CE``, ``BPR`` or
    ``InfoNCE`` (see :class:`NextItemLoss`). Ranking is the raw dot product with every item.
    """

    item_embedding_class = None

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        self.item_embedding = self.item_embedding_class.from_config(config, dataset)
        self.hidden_size = self.encoder_width()
        self.n_layers = config["n_layers"]
        self.n_heads = config["n_heads"]
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.attn_dropout_prob = config["attn_dropout_prob"]
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.initializer_range = config["initializer_range"]

        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.trm_encoder = TransformerEncoder(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            hidden_size=self.hidden_size,
            inner_size=self.inner_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attn_dropout_prob=self.attn_dropout_prob,
            hidden_act=self.hidden_act,
            layer_norm_eps=self.layer_norm_eps,
        )
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps)
        self.dropout = nn.Dropout(self.hidden_dropout_prob)
        self.loss_fct = self.build_loss(config)
        self.init_weights()

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

    def init_weights(self):
        """RecBole's SASRec initialisation for every module but the strategy, which owns its own."""
        for name, module in self.named_children():
            if name != "item_embedding":
                module.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def encode(self, item_emb, item_seq):
        """SASRec's causal Transformer over embedded sequences: states at every position."""
        position_ids = torch.arange(item_seq.size(1), dtype=torch.long, device=item_seq.device)
        input_emb = item_emb + self.position_embedding(position_ids).unsqueeze(0)
        input_emb = self.dropout(self.LayerNorm(input_emb))
        attention_mask = self.get_attention_mask(item_seq)
        return self.trm_encoder(input_emb, attention_mask, output_all_encoded_layers=True)[-1]

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
