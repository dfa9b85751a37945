"""Full ranking in bounded memory: the items scored block by block, only a running top-k kept.

RecBole's full-sort evaluation asks the model for a ``[users, items]`` score matrix, masks the
users' histories in it and ranks it, with an integer matrix of the same size for the positives:
with 4,096 users per batch and 10^6 items that is over 30 GB. For a model that exposes
``full_sort_query(interaction) -> [users, width]`` and scores items by the dot product with
``item_embedding(item_ids)`` (every SASRec- and DreamRec-backbone model here),
:class:`BlockedRankingMixin` scores ``ranking_block_size`` items at a time instead, masks the
history entries that fall in the block and merges the block into each user's running top-k:
memory is ``users x (k + block)``, whatever the catalogue. When a metric needs it (GAUC), it also
counts, for each positive item, the items scoring above it and level with it: its rank in the
whole catalogue. The collector receives the top-k (:class:`TopItems`) in place of the score
matrix and fills RecBole's ``rec.topk``, ``rec.items`` and ``rec.meanrank`` from it, so every
top-k metric (NDCG, Hit, MRR, Recall, Precision, MAP, coverage, popularity), GAUC and the
long-tail groups come out as RecBole computes them.

Metrics that need every score (``rec.score``: AUC, LogLoss, ...) and models that score items
otherwise (RecBole's own) keep RecBole's path; for those, :func:`users_per_ranking_batch` bounds
the score matrix by the number of users per batch.
"""

from dataclasses import dataclass

import torch
from recbole.evaluator.collector import Collector

#: Collector entries a top-k cannot provide.
NEEDS_EVERY_SCORE = ("rec.score",)


@dataclass
class TopItems:
    """Each user's ``depth`` best items, best first: ids ``[users, depth]`` and their scores;
    with the batch's positives given, for each positive the number of ranked items scoring above
    it and level with it (``[positives]``), and each user's number of ranked items (``[users]``:
    every item but [PAD] and the history)."""

    items: torch.Tensor
    scores: torch.Tensor
    positives_above: torch.Tensor = None
    positives_level: torch.Tensor = None
    ranked: torch.Tensor = None

    @property
    def device(self):
        return self.items.device


def blocked_top_items(
    query, item_embedding, n_items, depth, history_index, block_size, positives=None
):
    """The top ``depth`` items of each row of ``query`` by dot product, [PAD] and each row's
    history (RecBole's ``(rows, item ids)`` index, or None) excluded, scoring ``block_size``
    items at a time; with ``positives`` (RecBole's ``(rows, item ids)`` of the items to find),
    also where each positive ranks among all items (see :class:`TopItems`)."""
    users = len(query)
    device = query.device
    best_scores = query.new_empty(users, 0)
    best_items = torch.empty(users, 0, dtype=torch.long, device=device)
    if history_index is None:
        history_rows = history_items = torch.empty(0, dtype=torch.long, device=device)
    else:
        history_rows, history_items = (index.to(device) for index in history_index)
    if positives is not None:
        positive_rows, positive_items = (index.to(device) for index in positives)
        positive_scores = (query[positive_rows] * item_embedding(positive_items)).sum(-1, True)
        one_per_row = torch.equal(positive_rows, torch.arange(users, device=device))
        above = torch.zeros(len(positive_rows), dtype=torch.int32, device=device)
        at_or_above = torch.zeros_like(above)
    for start in range(0, n_items, block_size):
        ids = torch.arange(start, min(start + block_size, n_items), device=device)
        scores = query @ item_embedding(ids).T
        if start == 0:
            scores[:, 0] = float("-inf")
        in_block = (history_items >= start) & (history_items < start + len(ids))
        scores[history_rows[in_block], history_items[in_block] - start] = float("-inf")
        if positives is not None:
            rows = scores if one_per_row else scores[positive_rows]
            above += (rows > positive_scores).sum(1, dtype=torch.int32)
            at_or_above += (rows >= positive_scores).sum(1, dtype=torch.int32)
            # A positive is not counted against itself (its score here may differ from
            # positive_scores in the last bit).
            own = torch.nonzero((positive_items >= start) & (positive_items < start + len(ids)))
            own = own.squeeze(1)
            own_scores = rows[own, positive_items[own] - start].unsqueeze(1)
            above[own] -= (own_scores > positive_scores[own]).squeeze(1).int()
            at_or_above[own] -= (own_scores >= positive_scores[own]).squeeze(1).int()
        # The block's own top-k, then merged with the running one: only 2k candidates copied.
        block_scores, in_block_position = torch.topk(scores, min(depth, len(ids)), dim=1)
        candidates = torch.cat([best_scores, block_scores], dim=1)
        best_scores, position = torch.topk(candidates, min(depth, candidates.shape[1]), dim=1)
        block_items = start + in_block_position
        best_items = torch.cat([best_items, block_items], dim=1).gather(1, position)
    if positives is None:
        return TopItems(best_items, best_scores)
    # Every item but [PAD] and the distinct history items is ranked.
    history = torch.unique(history_rows * n_items + history_items)
    history = history[history % n_items != 0]
    ranked = n_items - 1 - torch.bincount(history // n_items, minlength=users)
    return TopItems(best_items, best_scores, above, at_or_above - above, ranked)


def ranks_in_blocks(config, model, collector):
    """Whether ``model``'s full ranking is blocked: ``ranking_block_size`` is set (~ ranks all
    items at once, as RecBole does), the model exposes its query, and no metric asks for every
    score."""
    return (
        config["ranking_block_size"] is not None
        and hasattr(model, "full_sort_query")
        and not any(collector.register.need(entry) for entry in NEEDS_EVERY_SCORE)
    )


def users_per_ranking_batch(config, n_items):
    """Users per full-ranking batch for models ranked all at once: ``eval_batch_size``, or fewer
    so that a batch's score matrix holds no more scores than a blocked batch does
    (``eval_batch_size x ranking_block_size``)."""
    if config["ranking_block_size"] is None:
        return config["eval_batch_size"]
    budget = config["eval_batch_size"] * config["ranking_block_size"]
    return max(1, min(config["eval_batch_size"], budget // n_items))


def mean_ranks(top, positive_u):
    """RecBole's ``rec.meanrank`` rows from a :class:`TopItems` with positives: per user, the
    sum of its positives' 1-based ranks (level scores sharing their mean rank), its number of
    ranked items and its number of positives."""
    positive_u = positive_u.to(top.device)
    users = len(top.items)
    rank = top.positives_above + 1 + top.positives_level / 2
    rank_sum = torch.zeros(users, device=top.device).index_add_(0, positive_u, rank.float())
    count = torch.bincount(positive_u, minlength=users)
    return torch.stack([rank_sum, top.ranked.float(), count.float()], dim=1)


class TopItemsCollector(Collector):
    """RecBole's Collector, which also takes a :class:`TopItems` for a batch's scores."""

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        if not isinstance(scores_tensor, TopItems):
            return super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        top = scores_tensor.items
        if self.register.need("rec.items"):
            self.data_struct.update_tensor("rec.items", top)
        if self.register.need("rec.topk"):
            # A top item is a hit when its (row, item) pair is one of the batch's positives.
            positive_u, positive_i = positive_u.to(top.device), positive_i.to(top.device)
            width = int(max(top.max(), positive_i.max())) + 1
            rows = torch.arange(len(top), device=top.device).unsqueeze(1)
            hits = torch.isin(rows * width + top, positive_u * width + positive_i).int()
            positives = torch.bincount(positive_u, minlength=len(top)).unsqueeze(1).int()
            self.data_struct.update_tensor("rec.topk", torch.cat([hits, positives], dim=1))
        if self.register.need("rec.meanrank"):
            self.data_struct.update_tensor("rec.meanrank", mean_ranks(scores_tensor, positive_u))
        if self.register.need("data.label"):
            label = interaction[self.config["LABEL_FIELD"]].to(self.device)
            self.data_struct.update_tensor("data.label", label)


class BlockedRankingMixin:
    """Put in front of a RecBole trainer: full ranking of models with a ``full_sort_query`` in
    blocks of ``ranking_block_size`` items (see the module)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.eval_collector = TopItemsCollector(config)

    def _full_sort_batch_eval(self, batched_data):
        if not ranks_in_blocks(self.config, self.model, self.eval_collector):
            return super()._full_sort_batch_eval(batched_data)
        interaction, history_index, positive_u, positive_i = batched_data
        interaction = interaction.to(self.device)
        # The positives' ranks in the whole catalogue cost as much again as the top-k: only
        # for the metrics that read them (GAUC).
        wanted = self.eval_collector.register.need("rec.meanrank")
        top = blocked_top_items(
            self.model.full_sort_query(interaction),
            self.model.item_embedding,
            self.tot_item_num,
            max(self.config["topk"]),
            history_index,
            self.config["ranking_block_size"],
            (positive_u, positive_i) if wanted else None,
        )
        return interaction, top, positive_u, positive_i
