"""RecBole's quick-start functions for plugin and RecBole models alike.

Same names and returns as ``recbole.quick_start`` (which imports ray and cannot see outside
models): :func:`run`, :func:`objective_function` for RecBole's HyperTuning, and
:func:`load_data_and_model`.
"""

import logging
import os
import sys
import time
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset as recbole_create_dataset
from recbole.data import data_preparation
from recbole.utils import get_environment, init_logger, init_seed, set_color

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.itememb import check_no_extra_items, itememb_path
from recbole_alphafuse.data.itememb_cache import create_cached_dataset, load_itememb
from recbole_alphafuse.data.prepare import prepare_dataset, uses_itememb_cache
from recbole_alphafuse.data.windows import check_train_positions, windowed_train_data
from recbole_alphafuse.ranking import users_per_ranking_batch
from recbole_alphafuse.registry import get_trainer
from recbole_alphafuse.safe_load import load_checkpoint


def _fresh_logger(config):
    """RecBole's ``init_logger`` for this run: without removing the handlers of an earlier run in
    the same process, ``logging.basicConfig`` keeps them and every later run logs to the first
    run's file. The log folder is made first: RecBole's check-then-create races between the
    processes of a distributed run."""
    root = getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    os.makedirs(os.path.join("log", config["model"]), exist_ok=True)
    init_logger(config)


def create_dataset(config):
    """Prepare the dataset's files if needed, load it with RecBole and check its item vectors.

    The .itememb file is read through its parsed-matrix cache where :func:`uses_itememb_cache`.
    """
    prepare_dataset(config)
    if uses_itememb_cache(config):
        dataset = create_cached_dataset(config)
    else:
        dataset = recbole_create_dataset(config)
    check_no_extra_items(dataset)
    # Every interaction of each item, before RecBole splits them (validation and test
    # included): the popularity of `tail_item_popularity: interactions`. The split datasets are
    # copies of this one, so they carry it.
    dataset.item_interactions = np.bincount(
        np.asarray(dataset.inter_feat[dataset.iid_field]), minlength=dataset.item_num
    )
    return dataset


def bound_users_per_ranking_batch(config, n_items):
    """Models that score all items at once (RecBole's own) rank fewer users per batch on large
    catalogues (:func:`~recbole_alphafuse.ranking.users_per_ranking_batch`)."""
    if hasattr(config.model_class, "full_sort_query"):
        return
    users = users_per_ranking_batch(config, n_items)
    if users < config["eval_batch_size"]:
        getLogger().info(
            f"eval_batch_size {config['eval_batch_size']} -> {users}: {config['model']} scores "
            f"all {n_items} items at once, so fewer users per batch keep a batch's scores within "
            "eval_batch_size x ranking_block_size."
        )
        config["eval_batch_size"] = users


def build_data(config):
    """The dataset and its dataloaders for ``config``, as a run trains and evaluates on them:
    (dataset, train, valid, test), the training data in windows where ``train_positions: all``."""
    check_train_positions(config, config.model_class)
    dataset = create_dataset(config)
    bound_users_per_ranking_batch(config, dataset.item_num)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if config["train_positions"] == "all":
        train_data = windowed_train_data(config, train_data)
    return dataset, train_data, valid_data, test_data


def _build(config):
    """Dataset, dataloaders and model for ``config``; the model is built from the training data."""
    dataset, train_data, valid_data, test_data = build_data(config)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = config.model_class(config, train_data._dataset).to(config["device"])
    return dataset, model, train_data, valid_data, test_data


def run(
    model=None,
    dataset=None,
    config_file_list=None,
    config_dict=None,
    saved=True,
    nproc=1,
    world_size=-1,
    ip="localhost",
    port="5678",
    group_offset=0,
    test=True,
    valid_ranks=False,
):
    """Train and test one model on one dataset, logging as RecBole's ``run_recbole`` does.

    With ``test=False`` the test split is never evaluated (a search trial): ``test_result`` and
    ``test_seconds`` are None.

    With ``resume_from: <checkpoint>`` in the config, training continues from that checkpoint
    (a ``-last.pth`` file written with ``save_last_checkpoint: True`` resumes exactly). It is
    read without running code from it; ``trust_checkpoint: True`` lifts that, for a file from a
    trusted source.

    With ``nproc`` > 1 (or ``world_size`` > 0) training is distributed as in RecBole's ``run``:
    ``nproc`` processes on this machine, ranks ``group_offset`` to ``group_offset + nproc - 1``
    of a group of ``world_size`` (default ``nproc``) that meets at ``ip:port``. Each process
    takes one GPU of ``gpu_id`` (NCCL) or, where there are none, works on the CPU (gloo). The
    dataset's files (the language vectors included) are prepared once, before the processes
    start; each batch is split across the ranks and their gradients averaged.

    Returns:
        dict with ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``,
        ``test_result``, ``model_file`` (the saved checkpoint, if ``saved``), ``best_epoch``,
        ``seconds_to_best`` (training time to the end of that epoch), ``last_epoch``
        (the last one evaluated; None without validation), ``test_seconds`` (the test
        evaluation, the best checkpoint's reload included), ``test_ranks`` (a sequential
        model's test users and 0-based target ranks, in evaluation order, as two arrays; None
        otherwise), ``valid_ranks`` (with ``valid_ranks=True``, the same for the validation
        of the best epoch; else None),
        ``resumed_epoch`` (the first epoch this call trained, when resumed; else
        None) and ``seconds_before_resume`` (the training time before the interruption; 0.0);
        with several processes, that of rank 0 (None on a machine without rank 0).
    """
    if nproc < 1 or (world_size > 0 and world_size < nproc + group_offset):
        raise AlphaFuseError(
            f"nproc={nproc}, world_size={world_size}, group_offset={group_offset}: a group needs "
            "nproc >= 1 processes here and world_size >= group_offset + nproc in all."
        )
    if nproc == 1 and world_size <= 0:
        return _run_process(model, dataset, config_file_list, config_dict, saved, test, valid_ranks)
    config_dict = dict(config_dict or {})
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    prepare_dataset(config)
    if uses_itememb_cache(config):
        # Parsed once here: the processes then all read the cache.
        load_itememb(itememb_path(config["data_path"], config["dataset"]))
    config_dict.update(
        nproc=nproc,
        world_size=nproc if world_size == -1 else world_size,
        ip=ip,
        port=port,
        offset=group_offset,
    )
    queue = torch.multiprocessing.get_context("spawn").SimpleQueue()
    torch.multiprocessing.spawn(
        _run_rank,
        args=(model, dataset, config_file_list, config_dict, saved, test, valid_ranks, queue),
        nprocs=nproc,
        join=True,
    )
    result = None if queue.empty() else queue.get()
    if isinstance(result, AlphaFuseError):
        raise result
    return result


def _run_rank(rank, model, dataset, config_file_list, config_dict, saved, test, valid_ranks, queue):
    """One process of a distributed :func:`run`; rank 0 sends the result (or the input error,
    which every rank meets alike) back."""
    try:
        result = _run_process(
            model,
            dataset,
            config_file_list,
            {**config_dict, "local_rank": rank},
            saved,
            test,
            valid_ranks,
        )
    except AlphaFuseError as error:
        result = error
    if rank == 0:
        queue.put(result)


class BestEpochClock:
    """``Trainer.fit``'s callback: the best validation epoch (as RecBole's early stopping counts
    it: a score equal to the best is a new best, whose checkpoint RecBole saves and tests), the
    seconds from the start of training to its end, and the last epoch evaluated. Its
    :meth:`state` travels with a ``-last.pth`` checkpoint, so that a resumed run reports them as
    the uninterrupted run would, its seconds counting the training time before the interruption."""

    def __init__(self, bigger, trainer=None):
        self.bigger = bigger
        self.trainer = trainer
        self.start = time.perf_counter()
        self.seconds_before_resume = 0.0
        self.best_score = None
        self.best_epoch = self.seconds_to_best = self.last_epoch = None
        self.best_valid_ranks = None  # (users, target ranks) of the best epoch's validation

    def state(self):
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "seconds_to_best": self.seconds_to_best,
            "last_epoch": self.last_epoch,
            "seconds": round(time.perf_counter() - self.start, 1),
            "best_valid_ranks": self.best_valid_ranks,
        }

    def restore(self, state):
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.seconds_to_best, self.last_epoch = state["seconds_to_best"], state["last_epoch"]
        self.seconds_before_resume = state["seconds"]
        self.start = time.perf_counter() - state["seconds"]
        self.best_valid_ranks = state.get("best_valid_ranks")

    def __call__(self, epoch_idx, valid_score):
        self.last_epoch = epoch_idx
        if self.best_score is None or (
            valid_score >= self.best_score if self.bigger else valid_score <= self.best_score
        ):
            self.best_score = valid_score
            self.best_epoch = epoch_idx
            self.seconds_to_best = round(time.perf_counter() - self.start, 1)
            ranks = getattr(self.trainer, "evaluated_ranks", None)
            if ranks is not None:
                users, target_ranks = ranks
                self.best_valid_ranks = [torch.as_tensor(users), torch.as_tensor(target_ranks)]


def check_resume_file(path, trust):
    """Refuse a ``resume_from`` file that is missing or holds more than a checkpoint should."""
    if not Path(path).is_file():
        raise AlphaFuseError(
            f"resume_from: {path} not found; give a checkpoint written by a run "
            "(saved/<Model>-<time>-last.pth with save_last_checkpoint: True)."
        )
    load_checkpoint(path, trust=trust)


def _run_process(
    model, dataset, config_file_list, config_dict, saved, test=True, valid_ranks=False
):
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    if config["resume_from"]:
        # Read once before any data work, so that a missing or refused file stops the run first.
        check_resume_file(config["resume_from"], config["trust_checkpoint"])
    init_seed(config["seed"], config["reproducibility"])
    _fresh_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    dataset, model, train_data, valid_data, test_data = _build(config)
    logger.info(dataset)
    logger.info(model)

    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    clock = trainer.epoch_clock = BestEpochClock(config["valid_metric_bigger"], trainer)
    # With valid_ranks each validation keeps its users' target ranks, so that the best epoch's
    # can be compared user by user with another run's (the benchmark's selection).
    trainer.record_ranks = valid_ranks
    if config["resume_from"]:
        trainer.resume_checkpoint(config["resume_from"])
    best_valid_score, best_valid_result = trainer.fit(
        train_data,
        valid_data,
        saved=saved,
        show_progress=config["show_progress"],
        callback_fn=clock,
    )
    test_result = test_seconds = test_ranks = None
    if test:
        test_start = time.perf_counter()
        trainer.record_ranks = True
        test_result = trainer.evaluate(
            test_data, load_best_model=saved, show_progress=config["show_progress"]
        )
        test_seconds = round(time.perf_counter() - test_start, 2)
        test_ranks = trainer.evaluated_ranks

    logger.info(
        "The running environment of this training is as follows:\n" + get_environment(config).draw()
    )
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    if test:
        logger.info(set_color("test result", "yellow") + f": {test_result}")
    if not config["single_spec"]:
        torch.distributed.destroy_process_group()
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "model_file": trainer.saved_model_file if saved else None,
        "best_epoch": clock.best_epoch,
        "seconds_to_best": clock.seconds_to_best,
        "last_epoch": clock.last_epoch,
        "test_seconds": test_seconds,
        "test_ranks": test_ranks,
        "valid_ranks": (
            None
            if clock.best_valid_ranks is None
            else tuple(t.numpy() for t in clock.best_valid_ranks)
        ),
        "resumed_epoch": trainer.start_epoch if config["resume_from"] else None,
        "seconds_before_resume": clock.seconds_before_resume,
    }


def objective_function(config_dict=None, config_file_list=None, saved=True):
    """One trial of RecBole's HyperTuning: train on ``config_dict``, select on validation."""
    config = Config(config_dict=config_dict, config_file_list=config_file_list)
    init_seed(config["seed"], config["reproducibility"])
    _fresh_logger(config)
    logging.basicConfig(level=logging.ERROR)

    _, model, train_data, valid_data, test_data = _build(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, verbose=False, saved=saved
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved)
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }


def load_data_and_model(model_file, trust_checkpoint=False):
    """Reload a checkpoint saved by :func:`run`: the frozen language part is rebuilt from the data.

    The file is read without running code from it: anything beyond what a RecBole or plugin
    checkpoint holds is refused, unless ``trust_checkpoint`` (for files from a trusted source).

    Returns:
        (config, model, dataset, train_data, valid_data, test_data), as RecBole's function does.
    """
    checkpoint = load_checkpoint(model_file, trust=trust_checkpoint)
    config = checkpoint["config"]
    if not config["single_spec"]:
        # Saved by a distributed run: reload it in this one process.
        config["single_spec"], config["local_rank"] = True, 0
        config["device"] = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    init_seed(config["seed"], config["reproducibility"])
    _fresh_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset, model, train_data, valid_data, test_data = _build(config)
    logger.info(dataset)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data
