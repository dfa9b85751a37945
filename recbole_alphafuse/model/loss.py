r"""Next-item losses shared by every backbone.

- :class:`ItemSoftmax`: softmax cross-entropy of each target among the catalogue, in three
  forms with one meaning: over the whole table (RecBole's CE, fused by torch where it can be),
  chunked over items (the same loss and gradients, never more than ``[targets, chunk]`` logits
  alive, on any torch), or sampled (a shared pool of uniform negatives with the logQ
  correction), over chunks of targets in bounded memory.
- :func:`generalised_bce`: gSASRec's gBCE on the same pool.
- :class:`NextItemLoss`: the ``loss_type`` of the SASRec-family models, built on both;
  :func:`resolve_loss_type` turns ``auto`` into one of them by the catalogue size.

Every form reads the item vectors it scores through the item-embedding strategy
(``item_embedding(ids)``), so a strategy with a computed table (an adapter, AlphaFuse's fusion)
computes only those rows.
"""

import math
from functools import partial

import torch
import torch.nn.functional as F
from recbole.model.loss import BPRLoss
from torch import nn
from torch.utils.checkpoint import checkpoint

from recbole_alphafuse import AlphaFuseError

LOSS_TYPES = ("CE", "BPR", "InfoNCE", "SampledSoftmax", "gBCE")
AUTO_LOSS = "auto"
#: Logits the fused full softmax and the pooled losses hold at once (64 MiB of floats): their
#: chunk of targets is this over the catalogue or pool size. torch's own chunk choice is several
#: times slower at 10^5 items.
FUSED_CE_LOGITS = 2**24


def resolve_loss_type(loss_type, n_items, sampled_above_items):
    """``auto``: ``CE`` for catalogues of at most ``sampled_above_items`` real items (``n_items``
    counts [PAD]), ``SampledSoftmax`` for larger ones, where scoring every item dominates an
    epoch and a shared pool keeps CE's quality. Any other ``loss_type`` is kept."""
    if loss_type != AUTO_LOSS:
        return loss_type
    if not isinstance(sampled_above_items, int) or sampled_above_items < 0:
        raise AlphaFuseError(
            "sampled_above_items must be a non-negative integer (the catalogue size above which "
            f"loss_type 'auto' samples), got {sampled_above_items!r}."
        )
    return "SampledSoftmax" if n_items - 1 > sampled_above_items else "CE"


def item_rows(item_embedding, item_ids):
    """The strategy's vectors of ``item_ids``, with [PAD] as a zero row (as in ``.weight``)."""
    return item_embedding(item_ids) * (item_ids != 0).unsqueeze(-1)


def shared_negative_pool(n_items, count, device):
    """One pool for a whole batch: ``count`` distinct items drawn uniformly from the real items
    (1 .. n_items - 1), each in the pool with probability ``count / (n_items - 1)``."""
    count = min(count, n_items - 1)
    return torch.randperm(n_items - 1, device=device)[:count] + 1


class ItemSoftmax:
    r"""Cross-entropy of each target among the items, scored by ``queries . items``, or with
    ``cosine`` by their cosine similarity; both divided by ``temperature``. [PAD] scores 0.

    - ``n_negatives`` None, ``chunk_size`` None: the softmax over the whole table (:meth:`full`).
    - ``chunk_size`` c: the log-partition summed over chunks of c items, each chunk's logits
      recomputed in the backward pass (activation checkpointing): the same loss and gradients
      with about ``targets x c`` floats of extra memory, whatever the catalogue size.
    - ``n_negatives`` k: a sampled softmax. All targets of a batch share one pool of k uniform
      negatives; a pooled item equal to a row's target is masked out of that row, and each
      pooled logit gets the logQ correction :math:`-\log(k / (n_{items} - 1))`, so that the pool
      stands for the whole catalogue. With k = every real item it is exactly the softmax over
      the real items.
    """

    def __init__(
        self, n_items, *, chunk_size=None, n_negatives=None, cosine=False, temperature=1.0
    ):
        for name, value in (("chunk_size", chunk_size), ("n_negatives", n_negatives)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise AlphaFuseError(f"{name} must be a positive integer or ~, got {value!r}.")
        self.n_items = n_items
        self.chunk_size = chunk_size
        self.n_negatives = n_negatives
        self.cosine = cosine
        self.temperature = temperature

    def _query(self, queries):
        return F.normalize(queries, dim=-1) if self.cosine else queries

    def _logits(self, queries, rows):
        """``queries`` already prepared by :meth:`_query`."""
        if self.cosine:
            rows = F.normalize(rows, dim=-1)
        logits = queries @ rows.T
        return logits if self.temperature == 1 else logits / self.temperature

    def _target_logits(self, queries, targets, item_embedding):
        rows = item_rows(item_embedding, targets)
        if self.cosine:
            rows = F.normalize(rows, dim=-1)
        return (queries * rows).sum(-1) / self.temperature

    def __call__(self, queries, targets, item_embedding):
        if self.n_negatives is not None:
            return self.sampled(queries, targets, item_embedding)
        if self.chunk_size is None:
            return self.full(queries, targets, item_embedding.weight)
        queries = self._query(queries)
        log_partition = self.log_partition(queries, item_embedding)
        return (log_partition - self._target_logits(queries, targets, item_embedding)).mean()

    def full(self, queries, targets, table):
        """The softmax over the whole ``table``: with torch's fused ``linear_cross_entropy``
        (torch >= 2.13) over chunks of targets, never more than :data:`FUSED_CE_LOGITS` logits
        alive and about twice as fast on a CPU as the logit matrix, which older torch builds."""
        queries = self._query(queries)
        if self.temperature != 1:
            queries = queries / self.temperature
        if self.cosine:
            table = F.normalize(table, dim=-1)
        if not (hasattr(F, "linear_cross_entropy") and hasattr(nn, "LinearCrossEntropyOptions")):
            return F.cross_entropy(queries @ table.T, targets)
        options = nn.LinearCrossEntropyOptions(
            batch_chunk_size=max(1, FUSED_CE_LOGITS // len(table))
        )
        return F.linear_cross_entropy(queries, table, targets, options=options)

    def log_partition(self, queries, item_embedding):
        """logsumexp over every item of each query's logits, chunk by chunk."""
        parts = []
        for start in range(0, self.n_items, self.chunk_size):
            ids = torch.arange(
                start, min(start + self.chunk_size, self.n_items), device=queries.device
            )
            parts.append(
                checkpoint(self._chunk_logsumexp, queries, ids, item_embedding, use_reentrant=False)
            )
        return torch.logsumexp(torch.stack(parts, dim=1), dim=1)

    def _chunk_logsumexp(self, queries, ids, item_embedding):
        return torch.logsumexp(self._logits(queries, item_rows(item_embedding, ids)), dim=1)

    def sampled(self, queries, targets, item_embedding):
        return self.pooled_mean(queries, targets, item_embedding, self.softmax_rows)

    def softmax_rows(self, target_logits, pooled_logits):
        """Each target's softmax loss over itself and the pool, the pooled logits logQ-corrected:
        the logQ shift applied to each row's log-sum, not to a copy of the pooled logits."""
        log_q = math.log(pooled_logits.shape[1] / (self.n_items - 1))
        pooled = torch.logsumexp(pooled_logits, dim=1) - log_q
        return torch.logaddexp(target_logits, pooled) - target_logits

    def pooled_mean(self, queries, targets, item_embedding, row_losses):
        """The mean over targets of ``row_losses(target logits [t], pooled logits [t, k])`` (one
        loss per target) on one shared pool of k negatives, a pooled item equal to the row's
        target at -inf. The targets go in chunks of at most :data:`FUSED_CE_LOGITS` / k, each
        chunk's pooled logits recomputed in the backward pass where there are several: about
        ``chunk x k`` floats alive, whatever the batch and the pool size."""
        queries = self._query(queries)
        pool = shared_negative_pool(self.n_items, self.n_negatives, queries.device)
        pool_rows = item_rows(item_embedding, pool)
        target_logits = self._target_logits(queries, targets, item_embedding)
        chunk = max(1, FUSED_CE_LOGITS // len(pool))
        if len(targets) <= chunk:
            total = self._pooled_sum(queries, target_logits, targets, pool, pool_rows, row_losses)
            return total / len(targets)
        total = sum(
            checkpoint(
                self._pooled_sum,
                queries[start : start + chunk],
                target_logits[start : start + chunk],
                targets[start : start + chunk],
                pool,
                pool_rows,
                row_losses,
                use_reentrant=False,
            )
            for start in range(0, len(targets), chunk)
        )
        return total / len(targets)

    def _pooled_sum(self, queries, target_logits, targets, pool, pool_rows, row_losses):
        pooled = self._logits(queries, pool_rows)
        # In place: the product's backward needs its inputs only, and this is the largest tensor.
        pooled.masked_fill_(pool.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
        return row_losses(target_logits, pooled).sum()


def generalised_bce(target_logits, pooled_logits, n_items, calibration):
    r"""gSASRec's gBCE (Petrov and Macdonald, RecSys 2023) on a shared pool of k negatives:
    :math:`-\beta \log \sigma(s^+) - \sum_{j} \log(1 - \sigma(s^-_j))`, per target over its
    ``1 + k`` scores, where :math:`\alpha = k / (n_{items} - 1)` and
    :math:`\beta = \alpha (t (1 - 1/\alpha) + 1/\alpha)` with calibration t (t = 0: beta = 1,
    plain BCE; t = 1: beta = alpha, fully calibrated). Masked (-inf) pooled logits add nothing.
    One loss per target."""
    k = pooled_logits.shape[1]
    alpha = k / (n_items - 1)
    beta = alpha * (calibration * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    negative = F.softplus(pooled_logits).sum(dim=1)
    return (beta * F.softplus(-target_logits) + negative) / (1 + k)


class NextItemLoss(nn.Module):
    r"""Loss of a sequence representation against its next item.

    - ``CE``: softmax cross-entropy over the dot products with all items (RecBole's SASRec);
      with ``ce_chunk_size`` computed over item chunks in bounded memory (:class:`ItemSoftmax`).
    - ``SampledSoftmax``: the same softmax over the target and one pool of ``n_negatives``
      uniform negatives shared by the batch, collisions masked, logQ-corrected.
    - ``gBCE``: gSASRec's generalised BCE on that pool, calibration ``gbce_t``.
    - ``BPR``: pairwise loss against the negative item RecBole's sampler provides.
    - ``InfoNCE``: cosine similarity divided by ``temperature``, against ``neg_ratio`` negatives
      drawn uniformly per target from the items other than it, as in AlphaFuse's reference
      training.
    """

    def __init__(
        self,
        loss_type,
        n_items,
        temperature=0.07,
        neg_ratio=64,
        ce_chunk_size=None,
        n_negatives=4096,
        gbce_t=0.75,
    ):
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise AlphaFuseError(
                f"loss_type must be one of {LOSS_TYPES + (AUTO_LOSS,)}, got '{loss_type}'."
            )
        if loss_type == "gBCE" and not 0 <= gbce_t <= 1:
            raise AlphaFuseError(f"gbce_t must lie in [0, 1], got {gbce_t}.")
        self.loss_type = loss_type
        self.n_items = n_items
        self.temperature = temperature
        self.neg_ratio = neg_ratio
        self.gbce_t = gbce_t
        sampled = loss_type in ("SampledSoftmax", "gBCE")
        self.softmax = ItemSoftmax(
            n_items,
            chunk_size=ce_chunk_size if loss_type == "CE" else None,
            n_negatives=n_negatives if sampled else None,
        )
        self.bpr = BPRLoss()

    def forward(self, seq_output, pos_items, item_embedding, neg_items=None):
        if self.loss_type in ("CE", "SampledSoftmax"):
            return self.softmax(seq_output, pos_items, item_embedding)
        if self.loss_type == "gBCE":
            gbce = partial(generalised_bce, n_items=self.n_items, calibration=self.gbce_t)
            return self.softmax.pooled_mean(seq_output, pos_items, item_embedding, gbce)
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
