"""``train_positions: all``: each training history once per epoch, a next-item loss at every
position, instead of RecBole's one training row (and one encoder pass) per target.

RecBole's sequential training data holds, for each user, successive prefixes: row i is the
history before target i (its last ``MAX_ITEM_LIST_LENGTH`` items). A causal encoder computes in
one pass over a window the states of all its positions, so one row can train every target
inside its window. The rows kept are the user's last one and every ``stride``-th before it; each
scores the targets of the ``stride`` rows it stands for (its last ``stride`` positions, or all of
a user's first targets). So each target of RecBole's rows is trained exactly once per epoch, and
with ``stride`` = half a window every target still sees at least half a window of history (all
of it near the start of a user's sequence) where non-overlapping windows would give the first
target of each window one item.

``train_batch_size`` still counts targets, so a batch of windows holds about as many targets as
a batch of RecBole's rows and an epoch takes about as many optimiser steps: the two modes differ
in encoder work only, not in how far an epoch moves the model.
"""

import math

import numpy as np
import torch
from recbole.data.dataloader import TrainDataLoader
from recbole.data.interaction import Interaction

from recbole_alphafuse import AlphaFuseError

TRAIN_POSITIONS = ("last", "all")
# Per kept row: how many of its last positions carry a loss.
SCORED_POSITIONS_FIELD = "scored_positions"


def check_train_positions(config, model_class):
    """Refuse a ``train_positions`` that ``model_class`` cannot train (before any data is read)."""
    value = config["train_positions"]
    supported = getattr(model_class, "supported_train_positions", ())
    if value == "all" and "all" not in supported:
        raise AlphaFuseError(
            f"train_positions: all is for the models on the plugin's SASRec and DreamRec "
            f"backbones; {model_class.__name__} trains on RecBole's rows (for RecBole's SASRec, "
            "use IDSASRec)."
        )
    if supported and value not in supported:
        raise AlphaFuseError(
            f"train_positions must be one of {list(supported)} for {model_class.__name__}, "
            f"got '{value}'."
        )
    if value == "all" and config["encoder"] == "reference":
        # Its positions count back from the newest item: a window's earlier states would be
        # read at positions that the newest item of a history never takes.
        raise AlphaFuseError(
            "train_positions: all needs encoder: recbole (the reference encoder numbers "
            "positions from the newest item); set train_positions: last."
        )


def window_stride(max_seq_length):
    """Targets scored per window: half of it, so each sees at least half a window of history."""
    return max(1, math.ceil(max_seq_length / 2))


def window_rows(users, stride):
    """The rows that start a window and how many targets each scores.

    ``users``: the user of each training row; a user's rows are contiguous, oldest first.
    Returns ``(kept row indices, scored counts)``.
    """
    users = np.asarray(users)
    count = len(users)
    index = np.arange(count)
    starts = np.r_[True, users[1:] != users[:-1]]
    ends = np.r_[users[1:] != users[:-1], True]
    run_start = np.maximum.accumulate(np.where(starts, index, 0))
    run_end = np.minimum.accumulate(np.where(ends, index, count)[::-1])[::-1]
    kept = (run_end - index) % stride == 0
    scored = np.minimum(stride, index - run_start + 1)
    return index[kept], scored[kept]


def check_successive_prefixes(item_seq, lengths, targets, kept, scored, dataset_name):
    """Each kept row's window must hold the targets of the rows it stands for (row ``j - d``'s
    target is the window's item ``d`` positions before its end); else refuse the dataset."""
    for offset in range(1, int(scored.max(initial=1))):
        rows = kept[scored > offset]
        window_items = item_seq[rows, lengths[rows] - offset]
        if not np.array_equal(window_items, targets[rows - offset]):
            raise AlphaFuseError(
                f"train_positions: all needs each user's training rows in {dataset_name} to be "
                "successive prefixes of one sequence (as RecBole's own split and `split "
                "cold-start` write them), and they are not: set train_positions: last."
            )


class WindowTrainDataLoader(TrainDataLoader):
    """RecBole's training dataloader over windows, its batches sized in targets: each holds
    ``train_batch_size / targets_per_window`` windows (at least one)."""

    def __init__(self, config, dataset, sampler, targets_per_window, shuffle):
        self.targets_per_window = targets_per_window
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def _init_batch_size_and_step(self):
        windows = max(1, round(self.config["train_batch_size"] / self.targets_per_window))
        if self.neg_sample_args["distribution"] != "none":
            windows = max(windows // self.times, 1)
            self.set_batch_size(windows * self.times)
        else:
            self.set_batch_size(windows)
        self.step = windows


def windowed_train_data(config, train_data):
    """A training dataloader over the kept rows, with their scored-position counts."""
    dataset = train_data._dataset
    interactions = dataset.inter_feat
    item_seq = interactions[config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]].numpy()
    lengths = interactions[config["ITEM_LIST_LENGTH_FIELD"]].numpy()
    targets = interactions[config["ITEM_ID_FIELD"]].numpy()
    kept, scored = window_rows(
        interactions[config["USER_ID_FIELD"]].numpy(), window_stride(item_seq.shape[1])
    )
    check_successive_prefixes(item_seq, lengths, targets, kept, scored, config["dataset"])
    windows = interactions[torch.from_numpy(kept)]
    windows.update(Interaction({SCORED_POSITIONS_FIELD: torch.from_numpy(scored)}))
    return WindowTrainDataLoader(
        config,
        dataset.copy(windows),
        train_data._sampler,
        targets_per_window=float(scored.mean()),
        shuffle=config["shuffle"],
    )
