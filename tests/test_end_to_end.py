"""Short real runs on the ml-100k slice: the CLI, the tuner, losses, checkpoint reload."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import FAST_CONFIG, SLICE, build_model
from recbole.model.sequential_recommender import NARM

from recbole_alphafuse.config import Config
from recbole_alphafuse.model.item_embedding import AlphaFuseItemEmbedding
from recbole_alphafuse.quick_start import load_data_and_model, run
from recbole_alphafuse.registry import get_trainer, plugin_models

REPO = Path(__file__).resolve().parent.parent


def fast_config_file(folder, slice_root):
    path = folder / "fast.yaml"
    path.write_text(yaml.safe_dump({**FAST_CONFIG, "data_path": str(slice_root)}))
    return path


def run_script(script, args, cwd):
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("model", ["AlphaFuseSASRec", "SASRec"])
def test_run_recbole_cli_trains_and_tests(model, slice_root, workdir):
    config_file = fast_config_file(workdir, slice_root)
    other = workdir / "other.yaml"
    other.write_text("learning_rate: 0.002\n")
    result = run_script(
        "run_recbole.py",
        [
            f"--model={model}",
            f"--dataset={SLICE}",
            f"--config_files={config_file} {other}",
            "--seed=3",
        ],
        workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "test result" in log and "ndcg@10" in log
    assert "learning_rate = 0.002" in log and "seed = 3" in log
    assert list((workdir / "saved").glob(f"{model}-*.pth"))


@pytest.mark.parametrize("model", sorted(plugin_models()))
def test_reload_reproduces_test_metrics(model, slice_root, workdir):
    config = {
        **FAST_CONFIG,
        "data_path": str(slice_root),
        "checkpoint_dir": str(workdir / "saved"),
        "null_thres": None,
    }
    result = run(model=model, dataset=SLICE, config_dict=config)
    assert Path(result["model_file"]).is_file()

    config, model, _, _, _, test_data = load_data_and_model(result["model_file"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    reloaded = trainer.evaluate(test_data, load_best_model=False)
    assert dict(reloaded) == dict(result["test_result"])


def test_same_seed_same_metrics_and_each_run_logs_to_its_own_file(slice_root, workdir):
    config = {**FAST_CONFIG, "data_path": str(slice_root)}
    first = run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config, saved=False)
    second = run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config, saved=False)
    assert dict(first["test_result"]) == dict(second["test_result"])
    logs = sorted((workdir / "log" / "AlphaFuseSASRec").glob("*.log"))
    assert len(logs) == 2
    for log in logs:
        assert log.read_text().count("test result") == 1


def test_infonce_run_trains(slice_root, workdir):
    config = {**FAST_CONFIG, "data_path": str(slice_root), "loss_type": "InfoNCE", "neg_ratio": 16}
    result = run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config, saved=False)
    assert 0.0 <= result["test_result"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize("loss_type", ["CE", "BPR", "InfoNCE", "SampledSoftmax", "gBCE"])
def test_every_loss_trains_only_the_id_part_of_items(loss_type, slice_root, workdir):
    _, model, train_data, _ = build_model(slice_root, "AlphaFuseSASRec", loss_type=loss_type)
    batch = next(iter(train_data))
    loss = model.calculate_loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    id_grad = model.item_embedding.id_embedding.weight.grad
    assert id_grad[1:].abs().sum() > 0 and torch.count_nonzero(id_grad[0]) == 0
    assert model.item_embedding.semantic.grad is None


def test_the_default_loss_samples_only_above_sampled_above_items(slice_root, workdir, caplog):
    _, model, train_data, _ = build_model(slice_root, "AlphaFuseSASRec")
    items = train_data._dataset.item_num - 1
    assert model.loss_fct.loss_type == "CE"
    caplog.set_level(logging.INFO)
    _, model, _, _ = build_model(slice_root, "AlphaFuseSASRec", sampled_above_items=items - 1)
    assert model.loss_fct.loss_type == "SampledSoftmax"
    assert model.loss_fct.softmax.n_negatives == 4096
    assert f"loss_type auto: SampledSoftmax of 4,096 negatives for {items:,} items" in caplog.text


@pytest.mark.parametrize(
    "alphafuse, base",
    [
        ("AlphaFuseSASRec", "SASRec"),
        ("AlphaFuseGRU4Rec", "GRU4Rec"),
        ("AlphaFuseBERT4Rec", "BERT4Rec"),
    ],
)
def test_trainable_parameters_are_the_base_models_minus_the_frozen_part(
    alphafuse, base, slice_root
):
    width = FAST_CONFIG["hidden_size"]  # GRU4Rec's item width is embedding_size: the same here
    counts = {}
    for name in (alphafuse, base):
        _, model, train_data, _ = build_model(slice_root, name, embedding_size=width)
        counts[name] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = train_data._dataset.item_num * (width - FAST_CONFIG["null_dim"])
    assert counts[alphafuse] == counts[base] - frozen


def test_popularity_weighting_centres_on_training_popularity(slice_root):
    _, uniform, _, _ = build_model(slice_root, "AlphaFuseSASRec", semantic_scale=1.0)
    _, weighted, train_data, _ = build_model(
        slice_root, "AlphaFuseSASRec", semantic_scale=1.0, decomposition_weighting="popularity"
    )
    counter = train_data._dataset.item_counter
    counts = torch.tensor(
        [counter[i] for i in range(len(weighted.item_embedding.semantic))], dtype=torch.float
    )
    weighted_mean = (counts / counts.sum()) @ weighted.item_embedding.semantic
    uniform_mean = (counts / counts.sum()) @ uniform.item_embedding.semantic
    assert weighted_mean.abs().max() < 1e-4 < uniform_mean.abs().max()


def test_run_hyper_runs_two_trials(slice_root, workdir):
    config_file = fast_config_file(workdir, slice_root)
    params = workdir / "params.hyper"
    params.write_text("null_dim choice [8,16]\n")
    output = workdir / "hyper.txt"
    result = run_script(
        "run_hyper.py",
        [
            "--model=AlphaFuseSASRec",
            f"--dataset={SLICE}",
            f"--config_files={config_file}",
            f"--params_file={params}",
            f"--output_file={output}",
        ],
        workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best params" in result.stdout
    text = output.read_text()
    assert "null_dim:8" in text and "null_dim:16" in text


class AlphaFuseNARM(NARM):
    """The recipe in docs/models/index.md for AlphaFuse on another RecBole model, verbatim."""

    item_embedding_class = AlphaFuseItemEmbedding

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.item_embedding = AlphaFuseItemEmbedding.from_config(
            config, dataset, width=config["embedding_size"]
        )


def test_any_recbole_model_takes_alphafuse_the_same_way(slice_root, workdir):
    config = {**FAST_CONFIG, "data_path": str(slice_root), "embedding_size": 32}
    result = run(model=AlphaFuseNARM, dataset=SLICE, config_dict=config, saved=False)
    assert 0.0 <= result["test_result"]["ndcg@10"] <= 1.0
    assert (
        Config(model=AlphaFuseNARM, dataset=SLICE, config_dict=config)["semantic_scale"] == 0.03125
    )


@pytest.mark.parametrize(
    ("recipe", "models"),
    [
        ("AlphaFuseSASRec-paper.yaml", ["AlphaFuseSASRec", "IDSASRec"]),
        ("DreamRec-paper.yaml", ["AlphaFuseDreamRec", "IDDreamRec"]),
    ],
)
def test_the_authors_recipes_train_every_model_of_their_backbone(
    recipe, models, slice_root, workdir
):
    # The recipe as shipped, cut to one epoch on the slice.
    for model in models:
        config = {"data_path": str(slice_root), "epochs": 1, "show_progress": False, "seed": 7}
        config["load_col"] = FAST_CONFIG["load_col"]
        result = run(
            model=model,
            dataset=SLICE,
            config_file_list=[str(REPO / "properties" / recipe)],
            config_dict=config,
            saved=False,
        )
        assert 0.0 <= result["test_result"]["ndcg@20"] <= 1.0
