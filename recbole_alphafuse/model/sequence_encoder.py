"""The causal history encoders of the SASRec backbone, chosen with ``encoder``.

Both map embedded histories ``[B, L, h]`` (RecBole's layout: items first, padding id 0 after)
to states at every position (``forward``) or at each history's last real item only
(``last_state``, what the backbone reads to score the next item).

- ``recbole``: RecBole's SASRec encoder, layers, initialisation and magnitudes unchanged.
- ``reference``: the encoder of the AlphaFuse authors' SASRec (and of DreamRec's condition),
  written from its description in the paper's code release: pre-normalised queries, no output
  projection, a width-``h`` ReLU feed-forward, PyTorch's default initialisation.
"""

import math

import torch
from recbole.model.layers import TransformerEncoder
from torch import nn

from recbole_alphafuse import AlphaFuseError


def newest_item_index(item_seq):
    """The position of each history's newest item (items first, padding after): ``[B]``."""
    return (item_seq != 0).sum(dim=1) - 1


def recbole_init(module, std):
    """RecBole's SASRec initialisation: normal(0, std) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()


class RecBoleSASRecEncoder(nn.Module):
    """RecBole's SASRec encoder: item + position -> LayerNorm -> dropout -> ``n_layers`` post-LN
    Transformer blocks (output projection, ``inner_size``-wide ``hidden_act`` feed-forward),
    every weight normal(0, ``initializer_range``)."""

    def __init__(self, config, hidden_size, max_seq_length):
        super().__init__()
        self.position_embedding = nn.Embedding(max_seq_length, hidden_size)
        self.trm_encoder = TransformerEncoder(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            hidden_size=hidden_size,
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        std = config["initializer_range"]
        self.apply(lambda module: recbole_init(module, std))

    def forward(self, item_emb, item_seq):
        length = item_seq.size(1)
        position_ids = torch.arange(length, dtype=torch.long, device=item_seq.device)
        input_emb = item_emb + self.position_embedding(position_ids).unsqueeze(0)
        input_emb = self.dropout(self.LayerNorm(input_emb))
        # RecBole's causal mask over real items, as additive scores.
        allowed = torch.tril((item_seq != 0)[:, None, None, :].expand(-1, -1, length, -1))
        attention_mask = torch.where(allowed, 0.0, -10000.0)
        return self.trm_encoder(input_emb, attention_mask, output_all_encoded_layers=True)[-1]

    def last_state(self, item_emb, item_seq):
        states = self(item_emb, item_seq)
        return states[torch.arange(len(states), device=states.device), newest_item_index(item_seq)]


class ReferenceBlock(nn.Module):
    """One block of the reference encoder.

    Queries are LayerNorm(x), keys and values x itself; scaled dot-product attention over the
    allowed positions (scores divided by sqrt of the full width, as the reference does for any
    number of heads), added to the normalised queries (no output projection); then
    y = LayerNorm(z + dropout(W2 ReLU(W1 z))) with z = LayerNorm(attention output), W1 and W2
    ``h x h``.
    """

    def __init__(self, hidden_size, n_heads, dropout_prob):
        super().__init__()
        if hidden_size % n_heads:
            raise AlphaFuseError(
                f"hidden_size={hidden_size} must be a multiple of n_heads={n_heads}."
            )
        self.n_heads = n_heads
        self.query_norm = nn.LayerNorm(hidden_size)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attention_dropout = nn.Dropout(dropout_prob)
        self.feed_forward_input_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.feed_forward_dropout = nn.Dropout(dropout_prob)
        self.feed_forward_norm = nn.LayerNorm(hidden_size)

    def _heads(self, x):
        batch, length, width = x.shape
        return x.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(self, x, allowed, query_positions=None):
        """``x``: ``[B, L, h]``; ``allowed``: ``[B, L, L]``, True where query i may see key j.

        ``query_positions`` (``[B]``): compute only the output at that position of each history
        (``[B, 1, h]``); keys and values still come from every position.
        """
        if query_positions is not None:
            rows = torch.arange(len(x), device=x.device)
            queries_in = x[rows, query_positions].unsqueeze(1)
            allowed = allowed[rows, query_positions].unsqueeze(1)
        else:
            queries_in = x
        queries = self.query_norm(queries_in)
        q, k, v = (
            self._heads(self.query(queries)),
            self._heads(self.key(x)),
            self._heads(self.value(x)),
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(x.shape[-1])
        scores = scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min)
        weights = self.attention_dropout(torch.softmax(scores, dim=-1))
        attended = (weights @ v).transpose(1, 2).reshape(queries.shape) + queries
        z = self.feed_forward_input_norm(attended)
        return self.feed_forward_norm(z + self.feed_forward_dropout(self.feed_forward(z)))


class ReferenceSASRecEncoder(nn.Module):
    """The AlphaFuse authors' SASRec encoder (``n_layers`` blocks; their code runs one).

    item + position -> dropout -> padded positions zeroed (no LayerNorm, no sqrt(h) scaling) ->
    :class:`ReferenceBlock` -> padded positions zeroed -> final LayerNorm. Positions count back
    from the newest item, which always takes the last of ``max_seq_length`` positions, as in the
    reference's histories padded on the left. Every module keeps PyTorch's default
    initialisation (position table normal(0, 1)).
    """

    def __init__(self, config, hidden_size, max_seq_length):
        super().__init__()
        dropout_prob = config["hidden_dropout_prob"]
        self.position_embedding = nn.Embedding(max_seq_length, hidden_size)
        self.dropout = nn.Dropout(dropout_prob)
        self.blocks = nn.ModuleList(
            ReferenceBlock(hidden_size, config["n_heads"], dropout_prob)
            for _ in range(config["n_layers"])
        )
        self.final_norm = nn.LayerNorm(hidden_size)

    def _block_inputs(self, item_emb, item_seq):
        """The first block's input, the attention mask and the real-position mask."""
        length = item_seq.size(1)
        real = item_seq != 0
        lengths = real.sum(dim=1, keepdim=True)
        offsets = torch.arange(length, device=item_seq.device).unsqueeze(0)
        position_ids = (offsets + self.position_embedding.num_embeddings - lengths).clamp(
            0, self.position_embedding.num_embeddings - 1
        )
        keep = real.unsqueeze(-1).to(item_emb.dtype)
        x = self.dropout(item_emb + self.position_embedding(position_ids)) * keep
        causal = torch.ones(length, length, dtype=torch.bool, device=item_seq.device).tril()
        return x, causal & real.unsqueeze(1), keep

    def forward(self, item_emb, item_seq):
        x, allowed, keep = self._block_inputs(item_emb, item_seq)
        for block in self.blocks:
            x = block(x, allowed) * keep
        return self.final_norm(x)

    def last_state(self, item_emb, item_seq):
        # The last block is run for the last real position only: the same state as forward's
        # there, for about half the work of a one-block encoder.
        x, allowed, keep = self._block_inputs(item_emb, item_seq)
        for block in self.blocks[:-1]:
            x = block(x, allowed) * keep
        newest = newest_item_index(item_seq)
        return self.final_norm(self.blocks[-1](x, allowed, query_positions=newest).squeeze(1))


#: Histories encoded together by :func:`in_length_groups`.
LENGTH_GROUP_ROWS = 256


def in_length_groups(encode, item_emb, item_seq, last_only=False):
    """``encode(item_emb, item_seq)`` over groups of histories of similar length, each cut after
    its longest history: most histories are far shorter than ``MAX_ITEM_LIST_LENGTH``, and no
    real position reads a later padding position, so the states of the real positions are those
    of the whole batch while the padding is mostly never computed. ``last_only``: ``encode``
    gives one state per history (``last_state``); else states at every position, zero at the
    positions cut off."""
    lengths = (item_seq != 0).sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    states = None
    for rows in order.split(LENGTH_GROUP_ROWS):
        width = max(1, int(lengths[rows].max()))
        part = encode(item_emb[rows, :width], item_seq[rows, :width])
        if states is None:
            shape = (len(item_seq),) if last_only else (len(item_seq), item_seq.size(1))
            states = part.new_zeros(*shape, part.shape[-1])
        if last_only:
            states[rows] = part
        else:
            states[rows, :width] = part
    return states


SEQUENCE_ENCODERS = {"recbole": RecBoleSASRecEncoder, "reference": ReferenceSASRecEncoder}


def build_sequence_encoder(config, hidden_size, max_seq_length):
    """The encoder named by ``config["encoder"]``."""
    name = config["encoder"]
    if name not in SEQUENCE_ENCODERS:
        raise AlphaFuseError(f"encoder must be one of {list(SEQUENCE_ENCODERS)}, got '{name}'.")
    return SEQUENCE_ENCODERS[name](config, hidden_size, max_seq_length)
