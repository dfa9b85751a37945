"""train_positions: all: which rows become windows, which positions carry a loss, and that every
target of RecBole's rows is trained exactly once per epoch."""

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import FAST_CONFIG, SLICE, build_model
from recbole.data import data_preparation
from recbole.data.interaction import Interaction

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.windows import (
    SCORED_POSITIONS_FIELD,
    check_successive_prefixes,
    window_rows,
    window_stride,
    windowed_train_data,
)
from recbole_alphafuse.quick_start import create_dataset, run


def test_the_last_row_and_every_stride_th_before_it_are_kept():
    # User 7 has 7 rows (targets 1..7), user 3 has 2, user 9 has 1; stride 3.
    users = [7] * 7 + [3] * 2 + [9]
    kept, scored = window_rows(users, 3)
    assert kept.tolist() == [0, 3, 6, 8, 9]
    # The first window of a user scores all its first targets, the others a stride each.
    assert scored.tolist() == [1, 3, 3, 2, 1]
    assert scored.sum() == len(users)


def test_a_window_scores_half_of_itself():
    assert [window_stride(n) for n in (1, 2, 10, 11, 50)] == [1, 1, 5, 6, 25]


def test_rows_that_are_not_successive_prefixes_are_refused():
    item_seq = np.array([[5, 0, 0], [5, 6, 0], [5, 6, 8]])
    targets = np.array([6, 8, 2])
    lengths = np.array([1, 2, 3])
    kept, scored = window_rows([1, 1, 1], 3)
    check_successive_prefixes(item_seq, lengths, targets, kept, scored, "ok")
    with pytest.raises(AlphaFuseError, match="successive prefixes"):
        check_successive_prefixes(item_seq, lengths, np.array([4, 8, 2]), kept, scored, "bad")


def test_scored_states_are_the_prefix_states_of_a_causal_encoder(slice_root):
    _, model, _, _ = build_model(slice_root, "AlphaFuseSASRec", train_positions="all")
    model.eval()
    window = torch.tensor([[3, 8, 5, 0, 0, 0, 0, 0, 0, 0]])
    batch = Interaction(
        {
            model.ITEM_SEQ: window,
            model.ITEM_SEQ_LEN: torch.tensor([3]),
            model.POS_ITEM_ID: torch.tensor([9]),
            SCORED_POSITIONS_FIELD: torch.tensor([3]),
        }
    )
    states, targets = model.scored_states(batch)
    assert targets.tolist() == [8, 5, 9]
    for position in range(3):
        prefix = torch.zeros_like(window)
        prefix[0, : position + 1] = window[0, : position + 1]
        alone = model.forward(prefix, torch.tensor([position + 1]))
        assert torch.allclose(states[position], alone[0], atol=1e-5)


@pytest.mark.parametrize("cold_start", [False, True])
def test_every_target_is_trained_exactly_once_per_epoch(data_copy, cold_start):
    root, _ = data_copy
    if cold_start:
        main(["split", "cold-start", "--dataset", SLICE, "--data-path", str(root)])
    settings = {**FAST_CONFIG, "data_path": str(root), "train_positions": "all"}
    if cold_start:
        del settings["load_col"]  # the split's own yaml says what its files hold
    config = Config(
        model="AlphaFuseSASRec",
        dataset=f"{SLICE}-cold" if cold_start else SLICE,
        config_dict=settings,
    )
    train_data, _, _ = data_preparation(config, create_dataset(config))
    rows = train_data._dataset.inter_feat
    user, target = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
    expected = Counter(zip(rows[user].tolist(), rows[target].tolist()))

    windows = windowed_train_data(config, train_data)
    assert len(windows._dataset) < len(train_data._dataset) / 3
    model = config.model_class(config, train_data._dataset)
    trained = Counter()
    batch_targets = []
    for batch in windows:
        _, targets = model.scored_states(batch)
        users = batch[user].repeat_interleave(batch[SCORED_POSITIONS_FIELD])
        trained.update(zip(users.tolist(), targets.tolist()))
        batch_targets.append(len(targets))
    assert trained == expected
    # train_batch_size counts targets in both modes, so an epoch takes about as many steps.
    full_batches = batch_targets[:-1]
    assert full_batches, "the slice should fill more than one batch"
    mean_targets = sum(full_batches) / len(full_batches)
    assert abs(mean_targets - config["train_batch_size"]) < 0.1 * config["train_batch_size"]
    assert abs(len(windows) - len(train_data)) <= 1


@pytest.mark.parametrize("loss_type", ["CE", "BPR", "InfoNCE"])
def test_a_run_trains_on_windows_with_every_loss(slice_root, workdir, loss_type):
    config = {
        **FAST_CONFIG,
        "data_path": str(slice_root),
        "train_positions": "all",
        "loss_type": loss_type,
    }
    result = run(model="RLMRecSASRec", dataset=SLICE, config_dict=config, saved=False)
    assert 0.0 <= result["test_result"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize(
    ("model", "settings", "message"),
    [
        ("SASRec", {}, "for RecBole's SASRec, use IDSASRec"),
        ("AlphaFuseGRU4Rec", {}, "SASRec and DreamRec"),
        ("IDSASRec", {"encoder": "reference"}, "needs encoder: recbole"),
        ("IDSASRec", {"train_positions": "every"}, "must be one of"),
    ],
)
def test_models_that_cannot_train_windows_refuse_them(
    slice_root, workdir, model, settings, message
):
    config = {**FAST_CONFIG, "data_path": str(slice_root), "train_positions": "all", **settings}
    with pytest.raises(AlphaFuseError, match=message):
        run(model=model, dataset=SLICE, config_dict=config, saved=False)


def test_train_positions_are_refused_before_any_data_is_read(tmp_path):
    config = {**FAST_CONFIG, "data_path": str(tmp_path), "train_positions": "every"}
    # The dataset does not exist: the setting is refused first, not the missing files.
    with pytest.raises(AlphaFuseError, match="must be one of"):
        run(model="AlphaFuseSASRec", dataset="no-such-dataset", config_dict=config, saved=False)
