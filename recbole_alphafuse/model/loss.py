"""Next-item losses shared by every backbone: RecBole's CE and BPR, and AlphaFuse's InfoNCE."""

import torch
import torch.nn.functional as F
from recbole.model.loss import BPRLoss
from torch import nn

from recbole_alphafuse import AlphaFuseError

LOSS_TYPES = ("CE", "BPR", "InfoNCE")


class NextItemLoss(nn.Module):
    r"""Loss of a sequence representation against its next item.

    - ``CE``: softmax cross-entropy over the dot products with all items (RecBole's SASRec).
    - ``BPR``: pairwise loss against the negative item RecBole's sampler provides.
    - ``InfoNCE``: cosine similarity divided by ``temperature``, against ``neg_ratio`` negatives
      drawn uniformly from the items other than the target, as in AlphaFuse's reference training.
    """

    def __init__(self, loss_type, n_items, temperature=0.07, neg_ratio=64):
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise AlphaFuseError(f"loss_type must be one of {LOSS_TYPES}, got '{loss_type}'.")
        self.loss_type = loss_type
        self.n_items = n_items
        self.temperature = temperature
        self.neg_ratio = neg_ratio
        self.bpr = BPRLoss()

    def forward(self, seq_output, pos_items, item_embedding, neg_items=None):
        if self.loss_type == "CE":
            logits = seq_output @ item_embedding.weight.T
            return F.cross_entropy(logits, pos_items)
        if self.loss_type == "BPR":
            pos_score = (seq_output * item_embedding(pos_items)).sum(-1)
            neg_score = (seq_output * item_embedding(neg_items)).sum(-1)
            return self.bpr(pos_score, neg_score)
        negatives = uniform_negatives(pos_items, self.n_items, self.neg_ratio)
        query = F.normalize(seq_output, dim=-1)
        pos = F.normalize(item_embedding(pos_items), dim=-1)
        neg = F.normalize(item_embedding(negatives), dim=-1)
        logits = torch.cat(
            [(query * pos).sum(-1, keepdim=True), torch.einsum("bh,bnh->bn", query, neg)], dim=1
        )
        target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits / self.temperature, target)


def uniform_negatives(pos_items, n_items, count):
    """``count`` items per target, uniform over the real items (1 .. n_items - 1) but the target.

    Drawn from one fewer id and shifted past the target: exact, with no resampling loop.
    """
    negatives = torch.randint(1, n_items - 1, (len(pos_items), count), device=pos_items.device)
    return negatives + (negatives >= pos_items.unsqueeze(-1)).long()


def paired_info_nce(queries, keys, temperature):
    """Contrastive alignment of two views of the same rows: row i of ``queries`` against every
    row of ``keys`` by cosine similarity / ``temperature``, row i of ``keys`` being the positive."""
    logits = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    target = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits / temperature, target)
