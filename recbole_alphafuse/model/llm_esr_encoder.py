"""LLM-ESR's dual-view sequence encoding, for the SASRec and DreamRec backbones."""

import torch
from torch import nn


class LLMESREncoderMixin:
    r"""Put in front of a backbone: each item view is encoded by the backbone's (shared) SASRec
    encoder at half the item width, each view's states attend to the other's (causal
    cross-attention, residual), and the user representation is the concatenation of both views
    at the last position; items are scored against [ID view ; semantic view].

    Reference:
        Qidong Liu et al. "LLM-ESR: Large Language Models Enhancement for Long-tailed Sequential
        Recommendation." in NeurIPS 2024.
    """

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.cross_attention = nn.MultiheadAttention(
            self.hidden_size, self.n_heads, dropout=self.attn_dropout_prob, batch_first=True
        )

    def encoder_width(self):
        return self.item_embedding.embedding_dim // 2

    def forward(self, item_seq, item_seq_len):
        # The cross-attention needs every position of both views.
        return self.gather_indexes(self.states(item_seq), item_seq_len - 1)

    def states(self, item_seq):
        id_view, semantic_view = self.item_embedding.views(item_seq)
        id_states = self.encode(id_view, item_seq)
        semantic_states = self.encode(semantic_view, item_seq)
        length = item_seq.size(1)
        future = torch.ones(length, length, dtype=torch.bool, device=item_seq.device).triu(1)
        id_fused = (
            id_states
            + self.cross_attention(
                id_states, semantic_states, semantic_states, attn_mask=future, need_weights=False
            )[0]
        )
        semantic_fused = (
            semantic_states
            + self.cross_attention(
                semantic_states, id_states, id_states, attn_mask=future, need_weights=False
            )[0]
        )
        return torch.cat([id_fused, semantic_fused], dim=-1)
