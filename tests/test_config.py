"""The Config subclass: plugin defaults, ml-100k location, .itememb keys, RecBole's CE breakage."""

import os

import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import InputType

from recbole_alphafuse import PROPERTIES_DIR
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import create_dataset


def test_plugin_model_gets_its_yaml_defaults_and_itememb_keys():
    config = Config(model="AlphaFuseSASRec", dataset="ml-100k", config_dict={"use_gpu": False})
    assert config["null_dim"] == 32 and config["semantic_scale"] == 0.03125
    assert config["load_col"]["itememb"] == ["iid", "item_emb"]
    assert config["load_col"]["inter"] == ["user_id", "item_id", "rating", "timestamp"]
    assert "itememb" in config["additional_feat_suffix"]
    assert config["alias_of_item_id"] == ["iid"]
    assert config["preload_weight"] == {"iid": "item_emb"}
    assert config["train_neg_sample_args"]["distribution"] == "none"


def test_ml100k_is_read_from_data_path_not_recboles_package():
    config = Config(model="SASRec", dataset="ml-100k", config_dict={"data_path": "somewhere/"})
    assert os.path.normpath(config["data_path"]) == os.path.normpath("somewhere/ml-100k")


def test_recbole_model_runs_with_ce_and_without_itememb_keys():
    config = Config(model="SASRec", dataset="ml-100k")
    assert config["train_neg_sample_args"]["distribution"] == "none"
    assert config["additional_feat_suffix"] is None
    assert config["MODEL_INPUT_TYPE"] == InputType.POINTWISE


def test_bpr_keeps_negative_sampling_and_infonce_is_pointwise():
    bpr = Config(model="AlphaFuseSASRec", dataset="ml-100k", config_dict={"loss_type": "BPR"})
    assert bpr["train_neg_sample_args"]["sample_num"] == 1
    assert bpr["MODEL_INPUT_TYPE"] == InputType.PAIRWISE
    nce = Config(model="AlphaFuseSASRec", dataset="ml-100k", config_dict={"loss_type": "InfoNCE"})
    assert nce["MODEL_INPUT_TYPE"] == InputType.POINTWISE
    assert nce["train_neg_sample_args"]["distribution"] == "none"


def test_windows_are_the_default_where_the_encoder_can_train_them():
    assert Config(model="AlphaFuseSASRec", dataset="ml-100k")["train_positions"] == "all"
    reference = Config(
        model="AlphaFuseSASRec", dataset="ml-100k", config_dict={"encoder": "reference"}
    )
    assert reference["train_positions"] == "last"
    assert reference.setting_sources()["train_positions"].endswith(
        "SASRecBackbone.yaml, then adjusted"
    )
    asked = {"encoder": "reference", "train_positions": "all"}
    assert Config(model="IDSASRec", dataset="ml-100k", config_dict=asked)["train_positions"] == (
        "all"  # refused when the model is built, with a message
    )
    assert Config(model="AlphaFuseDreamRec", dataset="ml-100k")["train_positions"] == "all"
    diffusion_reference = {"encoder": "reference"}
    assert (
        Config(model="AlphaFusePreferDiff", dataset="ml-100k", config_dict=diffusion_reference)[
            "train_positions"
        ]
        == "last"
    )
    assert Config(model="SASRec", dataset="ml-100k")["train_positions"] is None


def test_command_line_overrides_reach_the_config(monkeypatch):
    monkeypatch.setattr("sys.argv", ["run_recbole.py", "--null_dim=8", "--id_init=zeros"])
    config = Config(model="AlphaFuseSASRec", dataset="ml-100k")
    assert config["null_dim"] == 8 and config["id_init"] == "zeros"


def test_defaults_layer_backbone_then_strategy_then_model():
    config = Config(model="AlphaFuseDreamRec", dataset="ml-100k")
    assert (
        config["n_layers"] == 1 and config["timesteps"] == 2000
    )  # DreamRec backbone over SASRec's
    assert config["id_init"] == "normal" and config["null_dim"] == 32  # AlphaFuse strategy
    assert config["null_thres"] == 0.25 and config["semantic_scale"] == 1.0  # the model's own
    assert config["hidden_size"] is None


def test_paper_recipe_file_sets_the_papers_sasrec_settings():
    recipe = str(PROPERTIES_DIR / "AlphaFuseSASRec-paper.yaml")
    config = Config(model="AlphaFuseSASRec", dataset="ml-100k", config_file_list=[recipe])
    assert (config["loss_type"], config["temperature"], config["neg_ratio"]) == (
        "InfoNCE",
        0.07,
        64,
    )
    assert (config["n_layers"], config["n_heads"], config["hidden_size"], config["null_dim"]) == (
        1,
        1,
        128,
        64,
    )
    assert (config["learning_rate"], config["weight_decay"], config["hidden_dropout_prob"]) == (
        0.001,
        1e-6,
        0.1,
    )
    assert config["MAX_ITEM_LIST_LENGTH"] == 10 and config["valid_metric"] == "NDCG@20"


def test_recboles_models_leave_autograd_anomaly_detection_off():
    # RecBole's SINE module switches it on when the plugin imports RecBole's models.
    import recbole_alphafuse.model  # noqa: F401

    assert not torch.is_anomaly_enabled()


@pytest.mark.parametrize(
    ("alias", "name"),
    [("DreamRec", "IDDreamRec"), ("iDreamRec", "WhitenedDreamRec"), ("MoRec", "MoRecSASRec")],
)
def test_earlier_model_names_still_run_the_renamed_models(alias, name):
    config = Config(model=alias, dataset="ml-100k")
    assert config["model"] == name and config.model_class.__name__ == name


def test_config_command_shows_each_setting_and_its_source(capsys, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 0.01\nn_layers: 3\n")
    main(
        ["config", "--model=AlphaFuseSASRec", "--dataset=ml-100k"]
        + [f"--config_files={recipe}", "--null_dim=8"]
    )
    lines = {line.split(" = ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["null_dim"].split("#")[0].strip() == "null_dim = 8"
    assert lines["null_dim"].endswith("# command line")
    assert lines["n_layers"].endswith(f"# {recipe}")
    assert lines["n_heads"].endswith("# plugin properties/backbone/SASRecBackbone.yaml")
    assert lines["semantic_scale"].endswith(
        "# plugin properties/item_embedding/AlphaFuseItemEmbedding.yaml"
    )
    assert lines["train_batch_size"].endswith("# RecBole properties/overall.yaml")
    # CE makes the plugin drop RecBole's default negative sampling.
    assert lines["train_neg_sample_args"].endswith("overall.yaml, then adjusted")


def test_history_lists_no_model_reads_are_dropped_before_the_split(slice_root):
    def training_rows(**settings):
        config = Config(
            model="IDSASRec",
            dataset="ml-slice",
            config_dict={
                "data_path": str(slice_root),
                "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
                "use_gpu": False,
                **settings,
            },
        )
        train_data, _, _ = data_preparation(config, create_dataset(config))
        return config, train_data._dataset.inter_feat

    config, lean = training_rows()
    assert config["unused_col"] == {"inter": ["rating_list", "timestamp_list"]}
    _, full = training_rows(unused_col={})
    assert {"rating_list", "timestamp_list"} <= set(full.columns)
    assert not {"rating_list", "timestamp_list"} & set(lean.columns)
    for column in lean.columns:
        assert torch.equal(lean[column], full[column])
    assert len(lean) == len(full) > 0


def test_recboles_models_and_benchmark_files_keep_recboles_history_lists():
    assert Config(model="SASRec", dataset="ml-100k")["unused_col"] is None
    split = Config(
        model="IDSASRec",
        dataset="ml-100k",
        config_dict={"benchmark_filename": ["train", "valid", "test"]},
    )
    assert split["unused_col"] is None
