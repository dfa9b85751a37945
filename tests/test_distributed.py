"""Distributed training (RecBole's nproc / world_size) in two CPU processes over gloo."""

import math
import socket

import pytest
import torch
from conftest import FAST_CONFIG, SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import _run_process, load_data_and_model, run
from recbole_alphafuse.registry import get_trainer, plugin_models


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return str(probe.getsockname()[1])


def run_two_processes(slice_root, model, **overrides):
    return run(
        model=model,
        dataset=SLICE,
        config_dict={**FAST_CONFIG, "data_path": str(slice_root), **overrides},
        nproc=2,
        port=free_port(),
    )


@pytest.mark.parametrize("model", ["AlphaFuseSASRec", "AlphaFuseDreamRec"])
def test_two_cpu_processes_train_and_save_a_reloadable_model(slice_root, workdir, model):
    overrides = {"epochs": 2, "group_metrics": True}
    if model == "AlphaFuseDreamRec":
        overrides.update(timesteps=20, sampling_steps=2, null_thres=None)
    result = run_two_processes(slice_root, model, **overrides)

    assert set(result["test_result"]) >= {"ndcg@10", "tail_item/ndcg@10", "head_user/share"}
    config, reloaded, _, train_data, _, test_data = load_data_and_model(result["model_file"])
    assert config["single_spec"]
    if model == "AlphaFuseSASRec":
        # The two halves of the test users, ranked by each process's copy of the model and
        # reduced across processes, give what one process gets from the saved model: the
        # copies were in step and the per-process metrics (group metrics too) combine exactly.
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, reloaded)
        trainer.set_group_reference(train_data)
        single = trainer.evaluate(test_data, load_best_model=False)
        assert dict(single) == pytest.approx(dict(result["test_result"]), abs=2e-4)


def _train_each_model(rank, models, ports, config_dict, queue):
    """One process of a 2-process group per model in turn (one spawn for all: faster)."""
    scores = {}
    for model, port in zip(models, ports):
        distributed = {
            "local_rank": rank,
            "nproc": 2,
            "world_size": 2,
            "offset": 0,
            "ip": "localhost",
        }
        result = _run_process(
            model, SLICE, None, {**config_dict, **distributed, "port": port}, saved=False
        )
        scores[model] = result["test_result"]["ndcg@10"]
    if rank == 0:
        queue.put(scores)


# One model of each other strategy mechanics and of RecBole's own backbones (the SASRec and
# DreamRec backbones are covered above); all of them take 8 minutes on 2 CPU cores.
MODEL_SAMPLE = [
    "AlphaFuseBERT4Rec",
    "AlphaFuseGRU4Rec",
    "LLMESRSASRec",
    "RLMRecSASRec",
    "UniSRecDreamRec",
]


def test_other_plugin_models_train_in_two_cpu_processes(slice_root, workdir):
    models = MODEL_SAMPLE
    assert set(models) <= set(plugin_models())
    config = {
        **FAST_CONFIG,
        "data_path": str(slice_root),
        "null_thres": None,
        "timesteps": 20,
        "sampling_steps": 2,
    }
    queue = torch.multiprocessing.get_context("spawn").SimpleQueue()
    torch.multiprocessing.spawn(
        _train_each_model,
        args=(models, [free_port() for _ in models], config, queue),
        nprocs=2,
        join=True,
    )
    scores = queue.get()
    assert sorted(scores) == models
    assert all(math.isfinite(score) for score in scores.values()), scores


def test_more_processes_than_listed_gpus_is_refused_before_joining(slice_root, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    distributed = {"local_rank": 0, "nproc": 2, "world_size": 2, "offset": 0, "gpu_id": "0"}
    with pytest.raises(AlphaFuseError, match="nproc=2 processes need as many GPUs"):
        Config(
            model="AlphaFuseSASRec",
            dataset=SLICE,
            config_dict={**FAST_CONFIG, "data_path": str(slice_root), **distributed},
        )


@pytest.mark.parametrize("nproc, world_size", [(0, -1), (2, 1)])
def test_impossible_process_counts_are_refused(slice_root, nproc, world_size):
    with pytest.raises(AlphaFuseError, match="world_size >= group_offset \\+ nproc"):
        run(model="AlphaFuseSASRec", dataset=SLICE, nproc=nproc, world_size=world_size)
