"""Resuming after a kill: a run killed in the middle of an epoch and resumed from its last
checkpoint in a fresh trainer ends with exactly the metrics of the uninterrupted run."""

import numpy as np
import pytest
import torch
from conftest import FAST_CONFIG, SLICE
from recbole.utils import early_stopping

from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import BestEpochClock, _build, run
from recbole_alphafuse.registry import get_trainer
from recbole_alphafuse.safe_load import load_checkpoint
from recbole_alphafuse.trainer import last_checkpoint_file

EPOCHS = 2


class Killed(Exception):
    pass


def fresh_trainer(slice_root, checkpoint_dir, **overrides):
    """Config, dataloaders and an untrained model and trainer, built as ``run`` builds them."""
    config = Config(
        model="AlphaFuseSASRec",
        dataset=SLICE,
        config_dict={
            **FAST_CONFIG,
            "data_path": str(slice_root),
            "epochs": EPOCHS,
            "eval_step": 1,
            "stopping_step": 10,
            "checkpoint_dir": str(checkpoint_dir),
            "save_last_checkpoint": True,
            **overrides,
        },
    )
    _, model, train_data, valid_data, test_data = _build(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return trainer, train_data, valid_data, test_data


def kill_during_epoch(trainer, train_data, epoch):
    """Make the model's loss raise a few batches into ``epoch`` (0-based), as a kill would."""
    calls = 0
    original = trainer.model.calculate_loss

    def calculate_loss(interaction):
        nonlocal calls
        calls += 1
        if calls == epoch * len(train_data) + 2:
            raise Killed
        return original(interaction)

    trainer.model.calculate_loss = calculate_loss


def finish(trainer, train_data, valid_data, test_data):
    """Train to the end; (final parameters, best valid score and result, test result)."""
    best_score, best_result = trainer.fit(train_data, valid_data, saved=True)
    final = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    return final, best_score, best_result, trainer.evaluate(test_data, load_best_model=True)


def test_resumed_run_ends_with_the_uninterrupted_metrics(slice_root, workdir):
    killed_in_epoch = 1
    uninterrupted = finish(*fresh_trainer(slice_root, workdir / "whole"))

    trainer, train_data, valid_data, _ = fresh_trainer(slice_root, workdir / "killed")
    assert len(train_data) >= 2, "the kill must fall inside an epoch"
    kill_during_epoch(trainer, train_data, killed_in_epoch)
    with pytest.raises(Killed):
        trainer.fit(train_data, valid_data, saved=True)
    last = last_checkpoint_file(trainer.saved_model_file)
    assert load_checkpoint(last)["epoch"] == killed_in_epoch - 1
    del trainer

    # A new process would rebuild everything from the config; the generators start elsewhere.
    torch.manual_seed(12345)
    trainer, train_data, valid_data, test_data = fresh_trainer(slice_root, workdir / "killed")
    trainer.resume_checkpoint(last)
    assert trainer.start_epoch == killed_in_epoch
    resumed = finish(trainer, train_data, valid_data, test_data)

    # Bit-identical parameters (the metrics of the small slice alone could hide a difference).
    assert resumed[0].keys() == uninterrupted[0].keys()
    for name, value in uninterrupted[0].items():
        assert torch.equal(resumed[0][name], value), name
    assert resumed[1:] == uninterrupted[1:]


def test_recbole_best_checkpoint_resumes_on_recent_torch(slice_root, workdir):
    """RecBole's own resume_checkpoint uses torch.load's default weights_only=True (torch >= 2.6
    refuses the pickled Config); the plugin's trainer loads the checkpoint it wrote."""
    trainer, train_data, valid_data, _ = fresh_trainer(
        slice_root, workdir / "best", epochs=1, save_last_checkpoint=False
    )
    trainer.fit(train_data, valid_data, saved=True)
    assert not list((workdir / "best").glob("*-last.pth"))
    trainer, *_ = fresh_trainer(slice_root, workdir / "best", epochs=1)
    trainer.resume_checkpoint(next((workdir / "best").glob("*.pth")))
    assert trainer.start_epoch == 1


@pytest.mark.parametrize("model", ["AlphaFuseSASRec", "AlphaFusePreferDiff"])
def test_run_resumes_from_the_last_checkpoint_to_the_same_metrics(model, slice_root, workdir):
    settings = {**FAST_CONFIG, "data_path": str(slice_root), "epochs": 2, "stopping_step": 10}
    settings.update(save_last_checkpoint=True, null_thres=None)
    whole = run(model=model, dataset=SLICE, config_dict=settings, valid_ranks=True)
    assert whole["last_epoch"] == 1 and whole["best_epoch"] in (0, 1)
    # The -last file now holds the state after epoch 0, as if the run had died during epoch 1.
    last = last_checkpoint_file(whole["model_file"])
    assert load_checkpoint(last)["epoch"] == 0
    resumed = run(
        model=model, dataset=SLICE, config_dict={**settings, "resume_from": last}, valid_ranks=True
    )
    assert dict(resumed["test_result"]) == dict(whole["test_result"])
    assert resumed["best_valid_score"] == whole["best_valid_score"]
    # The best epoch is counted over the whole run, not from the resume on.
    assert (resumed["best_epoch"], resumed["last_epoch"]) == (whole["best_epoch"], 1)
    # So are the best epoch's validation ranks, which the checkpoint carries when it is epoch 0.
    for got, expected in zip(resumed["valid_ranks"], whole["valid_ranks"]):
        np.testing.assert_array_equal(got, expected)
    assert len(whole["valid_ranks"][0]) == len(set(whole["valid_ranks"][0])) > 0
    assert whole["resumed_epoch"] is None and whole["seconds_before_resume"] == 0.0
    assert resumed["resumed_epoch"] == 1 and resumed["seconds_before_resume"] > 0
    logs = (workdir / "log" / model).glob("*.log")
    first_log, resumed_log = sorted(logs, key=lambda log: log.stat().st_mtime)
    assert "epoch 0 training" in first_log.read_text()
    assert "epoch 0 training" not in resumed_log.read_text()  # it trained epoch 1 only
    assert "epoch 1 training" in resumed_log.read_text()


@pytest.mark.parametrize("bigger, best_epoch", [(True, 2), (False, 0)])
def test_best_epoch_clock_follows_early_stopping(bigger, best_epoch):
    clock = BestEpochClock(bigger)
    scores = [0.2, 0.3, 0.3, 0.25]
    best, steps = (-np.inf if bigger else np.inf), 0
    for epoch, score in enumerate(scores):
        clock(epoch, score)
        best, steps, _, saved = early_stopping(score, best, steps, max_step=10, bigger=bigger)
        if saved:  # RecBole saves (and later tests) this epoch's model
            saved_epoch = epoch
    # A tie is a new best for RecBole: the clock names the epoch whose model is tested.
    assert clock.best_epoch == saved_epoch == best_epoch
    assert clock.last_epoch == 3
    assert clock.seconds_to_best >= 0
