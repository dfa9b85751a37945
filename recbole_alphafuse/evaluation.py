"""Long-tail group metrics: every ranking metric also for tail/head target items and users.

With ``group_metrics: True`` each full-ranking evaluation of a sequential model adds, next to
RecBole's overall metrics, the same metrics over four groups of evaluated examples, under keys
such as ``tail_item/ndcg@10``:

- ``tail_item`` / ``head_item``: the target item is among the least popular ``tail_item_ratio``
  of items (popularity = its number of training examples as target, or with
  ``tail_item_popularity: interactions`` its number of interactions in the whole dataset; ties
  broken by item id), or at most ``tail_item_threshold`` popular when that is set;
- ``tail_user`` / ``head_user``: the example's history has at most ``tail_user_threshold`` items.

Every example has one target, so ``hit``, ``recall``, ``ndcg``, ``mrr`` and ``precision`` follow
from the target's position in the same top-k list that RecBole's evaluator ranks.

It also adds ``coverage@k``: the share of the real items that are in at least one evaluated
user's top k (RecBole 1.2.1's own ItemCoverage fails in its Collector).

It also adds the standard error of each overall metric over the evaluated examples, under keys
such as ``stderr/ndcg@10`` (their standard deviation / sqrt(n)): about how far the metric would
move on another sample of as many users. A difference between two models well inside it is not
a finding, however many seeds it is averaged over.

With ``group_metrics``, or ``trainer.record_ranks = True``, each full-ranking evaluation of a
sequential model also leaves each example's user and target rank on the trainer
(:attr:`GroupMetricsMixin.evaluated_ranks`). Two models evaluated on the same users can then be
compared user by user (:func:`paired_difference`): what makes a user easy or hard for both
cancels out of the difference, so its standard error is usually well below either model's own.
"""

import math
from collections import namedtuple

import numpy as np
import torch
from recbole.utils import ModelType
from scipy import stats

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.ranking import TopItems

GROUPS = ("tail_item", "head_item", "tail_user", "head_user")
SINGLE_TARGET_METRICS = ("hit", "recall", "ndcg", "mrr", "precision")


def top_items(scores, depth):
    """Each row's ``depth`` best items: from a score matrix, with ``torch.topk`` exactly as
    RecBole's Collector ranks it (so ties resolve the same way), or from the
    :class:`~recbole_alphafuse.ranking.TopItems` of a blocked ranking."""
    if isinstance(scores, TopItems):
        return scores.items[:, :depth]
    return torch.topk(scores, depth, dim=-1).indices


def target_ranks(scores, targets, depth):
    """0-based position of each row's target in the row's top ``depth`` scores (``depth`` if
    absent); ``scores`` as for :func:`top_items`."""
    top = top_items(scores, depth)
    found = top == targets.unsqueeze(-1)
    return torch.where(found.any(-1), found.int().argmax(-1), depth)


def per_example_metrics(ranks, metrics, topk):
    """Each example's value of each metric@k, for examples with one target at 0-based
    ``ranks``: RecBole's metrics are their means."""
    ranks = np.asarray(ranks, dtype=np.float64)
    values = {}
    for k in topk:
        hit = ranks < k
        per_metric = {
            "hit": hit,
            "recall": hit,
            "precision": hit / k,
            "ndcg": np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0),
            "mrr": np.where(hit, 1.0 / (ranks + 1.0), 0.0),
        }
        for metric in metrics:
            values[f"{metric}@{k}"] = per_metric[metric]
    return values


def single_target_metrics(ranks, metrics, topk):
    """RecBole's value of each metric@k for examples with one target at 0-based ``ranks``."""
    return {
        name: float(values.mean())
        for name, values in per_example_metrics(ranks, metrics, topk).items()
    }


def standard_errors(ranks, metrics, topk):
    """The standard error of each metric@k's mean over the examples (``stderr/<metric>@k``)."""
    return {
        f"stderr/{name}": float(stats.sem(values)) if len(values) > 1 else 0.0
        for name, values in per_example_metrics(ranks, metrics, topk).items()
    }


def metric_values(ranks, metric):
    """Each example's value of one single-target ``metric`` (``ndcg@10``) at 0-based ``ranks``."""
    name, _, k = metric.partition("@")
    return per_example_metrics(ranks, [name], [int(k)])[metric]


def paired_user_values(runs, reference_runs, metric):
    """Each user's ``metric`` under two models evaluated on the same users, each model's runs
    (its seeds) averaged user by user: (values, reference values). Each run is (users, ranks)
    in evaluation order. None when a run ranked other users than the rest, or the metric is not
    a single-target one."""
    name = metric.partition("@")[0]
    everything = [*runs, *reference_runs]
    if name not in SINGLE_TARGET_METRICS or not runs or not reference_runs:
        return None
    users = np.asarray(everything[0][0])
    if any(not np.array_equal(np.asarray(other), users) for other, _ in everything[1:]):
        return None

    def user_means(model_runs):
        return np.mean([metric_values(ranks, metric) for _, ranks in model_runs], axis=0)

    return user_means(runs), user_means(reference_runs)


def paired_difference(runs, reference_runs, metric):
    """(mean, standard error, n) over users of ``metric``'s difference between two models
    evaluated on the same users (see :func:`paired_user_values`); None where that is."""
    values = paired_user_values(runs, reference_runs, metric)
    return None if values is None else _mean_and_error(values[0] - values[1])


def _mean_and_error(differences):
    n = len(differences)
    return float(differences.mean()), float(stats.sem(differences)) if n > 1 else 0.0, n


PairedTest = namedtuple("PairedTest", "mean stderr n t_pvalue permutation_pvalue")


def paired_test(runs, reference_runs, metric, resamples=1999, seed=0):
    """:func:`paired_difference` with two-sided p-values for "no difference": scipy's paired
    t-test and its paired permutation test (each user's two values swapped at random; exact
    when ``resamples`` covers every swap; 1,999 resolve p down to 0.0005, enough for Holm's
    correction over a table's comparisons). A :class:`PairedTest`, or None as there."""
    values = paired_user_values(runs, reference_runs, metric)
    if values is None:
        return None
    mine, reference = values
    differences = mine - reference
    mean, stderr, n = _mean_and_error(differences)
    if n < 2 or not differences.any():
        return PairedTest(mean, stderr, n, 1.0, 1.0)
    permutation = stats.permutation_test(
        (mine, reference),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=max(1, 2**22 // n),  # a few million values in memory at a time
        rng=np.random.default_rng(seed),
    )
    if np.allclose(differences, differences[0]):
        t_pvalue = 0.0  # every user moved by the same amount: no spread, an infinite t
    else:
        t_pvalue = float(stats.ttest_rel(mine, reference).pvalue)
    return PairedTest(mean, stderr, n, t_pvalue, float(permutation.pvalue))


def users_to_detect(test, alpha=0.05, power=0.8):
    """How many test users a paired difference of ``test``'s size and spread needs to be found
    at ``alpha`` (two-sided, before any correction) with probability ``power``: statsmodels'
    power of the paired t-test, from the measured mean and standard error. None without a
    difference."""
    from statsmodels.stats.power import TTestPower

    spread = test.stderr * math.sqrt(test.n)
    if test.mean == 0 or spread == 0:
        return None
    users = TTestPower().solve_power(
        effect_size=abs(test.mean) / spread, alpha=alpha, power=power, alternative="two-sided"
    )
    return math.ceil(users)


def holm(pvalues, alpha=0.05):
    """Holm's step-down correction of a family of p-values (statsmodels): (adjusted p-values,
    which are significant at ``alpha``)."""
    # statsmodels takes about a second to import: only a benchmark's report needs it.
    from statsmodels.stats.multitest import multipletests

    if not len(pvalues):
        return [], []
    significant, adjusted, _, _ = multipletests(pvalues, alpha=alpha, method="holm")
    return [float(p) for p in adjusted], [bool(s) for s in significant]


def holm_family(tests, alpha=0.05):
    """A family of :class:`PairedTest` by key (None where no test could be made) ->
    {key: (test, Holm-corrected permutation p-value, significant at ``alpha``)}."""
    tests = {key: test for key, test in tests.items() if test is not None}
    adjusted, significant = holm([test.permutation_pvalue for test in tests.values()], alpha)
    return {key: (tests[key], p, s) for key, p, s in zip(tests, adjusted, significant)}


def tail_items(item_popularity, ratio=0.8, threshold=None):
    """Boolean mask over item ids (0 = [PAD] excluded) of the tail items."""
    popularity = np.asarray(item_popularity)
    tail = np.zeros(len(popularity), dtype=bool)
    if threshold is not None:
        tail[1:] = popularity[1:] <= threshold
    else:
        order = np.argsort(popularity[1:], kind="stable") + 1
        tail[order[: round(ratio * len(order))]] = True
    return tail


class GroupReference:
    """What the groups are defined by: the popularity of items (``tail_item_popularity``: their
    training examples as target, or every interaction of the dataset) and the thresholds."""

    def __init__(self, config, train_dataset):
        if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
            raise AlphaFuseError(
                "group_metrics needs a sequential model (one target item per example); "
                f"{config['model']} is not one. Set group_metrics: False."
            )
        ratio = config["tail_item_ratio"]
        if config["tail_item_threshold"] is None and not 0 < ratio < 1:
            raise AlphaFuseError(f"tail_item_ratio must lie in (0, 1), got {ratio}.")
        source = config["tail_item_popularity"]
        if source == "training_targets":
            popularity = np.bincount(
                train_dataset.inter_feat[train_dataset.iid_field].numpy(),
                minlength=train_dataset.item_num,
            )
        elif source == "interactions":
            popularity = getattr(train_dataset, "item_interactions", None)
            if popularity is None:
                raise AlphaFuseError(
                    "tail_item_popularity: interactions counts the dataset's interactions before "
                    "the split, which only recbole_alphafuse.quick_start.create_dataset records: "
                    "load the dataset with it, or use training_targets."
                )
        else:
            raise AlphaFuseError(
                f"tail_item_popularity must be training_targets or interactions, got {source!r}."
            )
        self.tail_item = torch.from_numpy(
            tail_items(popularity, ratio, config["tail_item_threshold"])
        )
        self.tail_user_threshold = config["tail_user_threshold"]
        self.seq_len_field = config["ITEM_LIST_LENGTH_FIELD"]

    def groups(self, interaction, positive_i):
        """Whether each example of an evaluation batch (one target each) has a tail target item,
        and whether it is a tail user's: two boolean tensors."""
        history = interaction[self.seq_len_field].cpu()
        return self.tail_item[positive_i.cpu()], history <= self.tail_user_threshold


class GroupCollector:
    """Collects each evaluated example's user and target rank, and with a ``reference`` its
    groups, then computes group metrics."""

    def __init__(self, reference, config):
        self.reference = reference
        self.metrics = [m.lower() for m in config["metrics"] if m.lower() in SINGLE_TARGET_METRICS]
        self.topk = config["topk"]
        self.decimals = config["metric_decimal_place"]
        self.user_field = config["USER_ID_FIELD"]
        self.users, self.ranks, self.tail_item, self.tail_user = [], [], [], []
        if reference is not None:
            # Per k, whether each item is in some user's top k.
            self.recommended = torch.zeros(len(self.topk), len(reference.tail_item), dtype=bool)

    def collect(self, interaction, scores, positive_i):
        targets = positive_i.to(scores.device)
        self.users.append(interaction[self.user_field].cpu())
        self.ranks.append(target_ranks(scores, targets, max(self.topk)).cpu())
        if self.reference is not None:
            top = top_items(scores, max(self.topk)).cpu()
            for row, k in enumerate(self.topk):
                self.recommended[row, top[:, :k].flatten()] = True
            tail_item, tail_user = self.reference.groups(interaction, positive_i)
            self.tail_item.append(tail_item)
            self.tail_user.append(tail_user)

    def examples(self):
        """(users, 0-based target ranks) of every evaluated example; None if none was ranked
        (an evaluation that was not full ranking)."""
        users, ranks = self._all_examples(self.users, self.ranks)
        return (users, ranks) if len(ranks) else None

    def result(self):
        ranks, tail_item, tail_user = self._all_examples(self.ranks, self.tail_item, self.tail_user)
        result = {
            name: round(value, self.decimals)
            for name, value in standard_errors(ranks, self.metrics, self.topk).items()
        }
        for group, members in zip(GROUPS, (tail_item, ~tail_item, tail_user, ~tail_user)):
            if not members.any():
                continue
            for name, value in single_target_metrics(
                ranks[members], self.metrics, self.topk
            ).items():
                result[f"{group}/{name}"] = round(value, self.decimals)
            result[f"{group}/share"] = round(float(members.mean()), self.decimals)
        (recommended,) = self._all_examples([self.recommended.flatten()])
        recommended = recommended.reshape(-1, *self.recommended.shape).any(axis=0)
        for row, k in enumerate(self.topk):
            # Over the real items: [PAD] is never recommended.
            coverage = recommended[row, 1:].mean()
            result[f"coverage@{k}"] = round(float(coverage), self.decimals)
        return result

    @staticmethod
    def _all_examples(*parts):
        """``parts`` (lists of per-batch tensors) over the examples of every process: in
        distributed evaluation each process ranks only its share of the examples."""
        local = [torch.cat(part).numpy() if part else np.zeros(0) for part in parts]
        if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            return local
        gathered = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, local)
        return [np.concatenate(parts) for parts in zip(*gathered)]


class GroupMetricsMixin:
    """Put in front of a RecBole trainer: adds the group metrics to every full-ranking evaluation.

    The item groups come from the training data given to ``fit``; to evaluate without training
    (a reloaded model), call :meth:`set_group_reference` with the training dataloader first.
    """

    group_reference = None
    _group_collector = None
    #: keep each evaluation's ranks without group metrics too (off: no work added to evaluation)
    record_ranks = False
    #: (users, target ranks) of the last full-ranking evaluation of a sequential model with
    #: group metrics or ``record_ranks``, else None
    evaluated_ranks = None

    def set_group_reference(self, train_data):
        self.group_reference = GroupReference(self.config, train_data.dataset)

    def fit(self, train_data, *args, **kwargs):
        if self.config["group_metrics"]:
            self.set_group_reference(train_data)
        return super().fit(train_data, *args, **kwargs)

    def _full_sort_batch_eval(self, batched_data):
        interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        if self._group_collector is not None:
            self._group_collector.collect(interaction, scores, positive_i)
        return interaction, scores, positive_u, positive_i

    def evaluate(self, eval_data, *args, **kwargs):
        self.evaluated_ranks = None
        grouped = self.config["group_metrics"]
        sequential = self.config["MODEL_TYPE"] == ModelType.SEQUENTIAL
        if not (eval_data and (grouped or (self.record_ranks and sequential))):
            return super().evaluate(eval_data, *args, **kwargs)
        if grouped and self.group_reference is None:
            raise AlphaFuseError(
                "group_metrics: the trainer has no training data to rank item popularity by; "
                "call trainer.set_group_reference(train_data) before evaluate."
            )
        self._group_collector = GroupCollector(
            self.group_reference if grouped else None, self.config
        )
        try:
            result = super().evaluate(eval_data, *args, **kwargs)
            if grouped:
                result.update(self._group_collector.result())
            self.evaluated_ranks = self._group_collector.examples()
        finally:
            self._group_collector = None
        return result
