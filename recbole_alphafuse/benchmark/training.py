"""One training of the benchmark, in a worker: a model's settings from its command-line name,
early stopping on validation, then the test of the best epoch."""

import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import yaml


def parse_model(text):
    """``Name:key=value,...`` -> (Name, {key: value}), values read as JSON where they are
    (``1e-6`` a number), else as YAML (``True``, ``[1, 2]``, text)."""
    name, _, settings = text.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = yaml.safe_load(value)
    return name, overrides


def train_and_test(
    dataset, model, seed, config_files, setting=None, test=True, fixed=None, checkpoint_dir=None
):
    """One training in a worker: ``model`` (``Name:key=value,...``) with ``setting`` over it
    (and over ``fixed``, the worker's own settings), early stopping on validation, then (if
    ``test``) the test metrics of the best epoch. With ``checkpoint_dir`` the training keeps
    its state there at every epoch and, when that folder holds one from an interrupted
    attempt, resumes from it exactly; without it the checkpoints go to a temporary folder.
    Returns (CSV row, {"test": ..., "valid": ...}): the users and target ranks of the test
    and of the best epoch's validation, each None where there are none."""
    from recbole_alphafuse.quick_start import run

    name, overrides = parse_model(model)
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() if checkpoint_dir is None else nullcontext(checkpoint_dir)
    ) as checkpoints:
        last = sorted(Path(checkpoints).glob("*-last.pth"))
        result = run(
            model=name,
            dataset=dataset,
            config_file_list=config_files,
            config_dict={
                **(fixed or {}),
                **overrides,
                **(setting or {}),
                "seed": seed,
                "checkpoint_dir": str(checkpoints),
                "save_last_checkpoint": checkpoint_dir is not None,
                "resume_from": str(last[-1]) if last else None,
            },
            saved=test or checkpoint_dir is not None,
            test=test,
            valid_ranks=True,
        )
    row = {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "seconds": round(time.perf_counter() - start + result["seconds_before_resume"], 1),
        "best_valid_score": result["best_valid_score"],
        "best_epoch": result["best_epoch"],
        "seconds_to_best": result["seconds_to_best"],
        "last_epoch": result["last_epoch"],
        "test_seconds": result["test_seconds"],
        "resumed_epoch": result["resumed_epoch"],
        **(result["test_result"] or {}),
    }
    return row, {"test": result["test_ranks"], "valid": result["valid_ranks"]}


def groups_of_test_examples(dataset, model, config_files):
    """The long-tail groups of ``dataset``'s test examples as ``model`` (``Name:key=value,...``)
    is tested on them: {"users", "tail_item", "tail_user"}, arrays in the order in which a run
    records its test ranks, for comparisons within a group of runs made before."""
    from recbole.utils import init_seed

    from recbole_alphafuse.config import Config
    from recbole_alphafuse.evaluation import GroupReference
    from recbole_alphafuse.quick_start import build_data

    name, overrides = parse_model(model)
    config = Config(
        model=name, dataset=dataset, config_file_list=config_files, config_dict=overrides
    )
    init_seed(config["seed"], config["reproducibility"])
    _, train_data, _, test_data = build_data(config)
    # As the trainer defines them (GroupMetricsMixin.fit).
    reference = GroupReference(config, train_data.dataset)
    users, tail_item, tail_user = [], [], []
    for interaction, _, _, positive_i in test_data:
        users.append(interaction[config["USER_ID_FIELD"]].numpy())
        item_flags, user_flags = reference.groups(interaction, positive_i)
        tail_item.append(item_flags.numpy())
        tail_user.append(user_flags.numpy())
    return {
        "users": np.concatenate(users),
        "tail_item": np.concatenate(tail_item),
        "tail_user": np.concatenate(tail_user),
    }
