"""Distributed training (RecBole's nproc / world_size) in two CPU processes over gloo."""

import socket

import pytest
from conftest import FAST_CONFIG, SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import load_data_and_model, run
from recbole_alphafuse.utils import get_trainer


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


def test_more_processes_than_listed_gpus_is_refused_before_joining(slice_root, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    distributed = {"local_rank": 0, "nproc": 2, "world_size": 2, "offset": 0, "gpu_id": "0"}
    with pytest.raises(AlphaFuseError, match="nproc=2 processes need as many GPUs"):
        Config(
            model="AlphaFuseSASRec",
            dataset=SLICE,
            config_dict={**FAST_CONFIG, "data_path": str(slice_root), **distributed},
        )
