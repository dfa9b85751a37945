"""The training and tuning command lines, shared by ``run_recbole.py`` / ``run_hyper.py`` and
``python -m recbole_alphafuse run|tune`` (for installs without the repository's scripts), and
``python -m recbole_alphafuse config``, which shows every setting a run would use.

Model settings are read by RecBole's Config from ``sys.argv`` (``--key=value``), as in RecBole.
"""

import argparse
import sys
from pathlib import Path

import torch
from recbole.trainer import HyperTuning

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import objective_function, run

RUN_DOC = """Train and test a model: ``python run_recbole.py --model=AlphaFuseSASRec --dataset=ml-100k``.

Same flags as RecBole's run_recbole.py: ``--model``, ``--dataset``, ``--config_files="a.yaml b.yaml"``
and any ``--key=value`` config override. Works for the plugin's models and RecBole's own.
Distributed training as in RecBole: ``--nproc=2`` trains in two processes on this machine (one
GPU each, or gloo on the CPU where there is no GPU); ``--world_size``, ``--ip``, ``--port`` and
``--group_offset`` join processes of several machines. Checkpoints (``--resume_from=F``) are read
without running code from them; ``--trust_checkpoint`` lifts that, for files you trust.
"""

TUNE_DOC = r"""Tune a model with RecBole's HyperTuning (hyperopt) or Ray Tune through the plugin's objective.

    python run_hyper.py --model=AlphaFuseSASRec --dataset=ml-100k --params_file=hyper.test \
        [--config_files="a.yaml b.yaml"] [--algo=exhaustive|random|bayes] [--max_evals=N] \
        [--tool=Hyperopt|Ray [--cpus_per_trial=1] [--gpus_per_trial=G] [--ray_address=ADDR]]

Each trial trains on the training split and is selected on the validation metric; the test
result of every trial is reported alongside, and all of them are written to ``--output_file``.
With ``--tool=Ray`` the trials run in parallel on a Ray cluster (a local one by default), each
with the CPUs and GPUs asked for, and a CSV of the trials is written beside ``--output_file``.
"""


def _expand_bare_flags(argv):
    """``--trust_checkpoint`` alone as ``--trust_checkpoint=True``, the form RecBole's Config
    reads from ``sys.argv``."""
    return ["--trust_checkpoint=True" if arg == "--trust_checkpoint" else arg for arg in argv]


def config_file_list(flag):
    """``--config_files="a.yaml b.yaml"`` as RecBole's list of files (None when not given)."""
    return flag.split() if flag else None


def run_command(argv=None, prog=None):
    """``run_recbole.py`` / ``python -m recbole_alphafuse run``: train and test one model."""
    parser = argparse.ArgumentParser(prog=prog, description=RUN_DOC.splitlines()[0])
    parser.add_argument("--model", "-m", type=str, default="AlphaFuseSASRec", help="model name")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    parser.add_argument("--nproc", type=int, default=1, help="processes on this machine")
    parser.add_argument(
        "--world_size", type=int, default=-1, help="processes in all (default nproc)"
    )
    parser.add_argument("--ip", type=str, default="localhost", help="address of rank 0's machine")
    parser.add_argument("--port", type=str, default="5678", help="port of rank 0's machine")
    parser.add_argument("--group_offset", type=int, default=0, help="first rank on this machine")
    args, _ = parser.parse_known_args(argv)
    sys.argv = _expand_bare_flags(sys.argv)
    config_files = config_file_list(args.config_files)
    try:
        run(
            model=args.model,
            dataset=args.dataset,
            config_file_list=config_files,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")


def tune_command(argv=None, prog=None):
    """``run_hyper.py`` / ``python -m recbole_alphafuse tune``: a hyperparameter search."""
    parser = argparse.ArgumentParser(prog=prog, description=TUNE_DOC.splitlines()[0])
    parser.add_argument("--model", type=str, default="AlphaFuseSASRec", help="model name")
    parser.add_argument("--dataset", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="fixed config files")
    parser.add_argument("--params_file", type=str, required=True, help="search space file")
    parser.add_argument("--output_file", type=str, default="hyper_result.txt", help="result file")
    parser.add_argument("--display_file", type=str, default=None, help="plot of the trials")
    parser.add_argument("--algo", type=str, default="exhaustive", help="exhaustive, random, bayes")
    parser.add_argument("--max_evals", type=int, default=100, help="trials (random / bayes)")
    parser.add_argument("--early_stop", type=int, default=10, help="trials without progress")
    parser.add_argument("--tool", choices=["Hyperopt", "Ray"], default="Hyperopt")
    parser.add_argument("--cpus_per_trial", type=float, default=1, help="Ray: CPUs a trial")
    parser.add_argument(
        "--gpus_per_trial",
        type=float,
        default=1 if torch.cuda.is_available() else 0,
        help="Ray: GPUs a trial (default 1 where there is a GPU, else 0)",
    )
    parser.add_argument("--ray_address", default=None, help="Ray: cluster to join (default local)")
    args, _ = parser.parse_known_args(argv)
    config_files = config_file_list(args.config_files)
    if not Path(args.params_file).is_file():
        sys.exit(
            f"error: --params_file {args.params_file} not found: give a search-space file, "
            "e.g. properties/hyper/AlphaFuseSASRec.hyper."
        )
    if args.tool == "Ray":
        return ray_tune(args, config_files)

    def objective(config_dict, config_file_list):
        config_dict = {"model": args.model, "dataset": args.dataset, **(config_dict or {})}
        return objective_function(config_dict, config_file_list)

    try:
        hp = HyperTuning(
            objective,
            algo=args.algo,
            early_stop=args.early_stop,
            max_evals=args.max_evals,
            params_file=args.params_file,
            fixed_config_file_list=config_files,
            display_file=args.display_file,
        )
        hp.run()
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
    hp.export_result(output_file=args.output_file)
    print("best params: ", hp.best_params)
    print("best result: ")
    print(hp.params2result[hp.params2str(hp.best_params)])


def ray_tune(args, config_files):
    try:
        from recbole_alphafuse.ray_tuning import tune_with_ray

        best_params, best_result = tune_with_ray(
            args.model,
            args.dataset,
            args.params_file,
            config_files,
            algo=args.algo,
            max_evals=args.max_evals,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            output_file=args.output_file,
            ray_address=args.ray_address,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
    except ImportError as error:
        sys.exit(
            f'error: --tool=Ray needs Ray Tune ({error}): `pip install -e ".[ray]"`, or use '
            "--tool=Hyperopt."
        )
    print("best params: ", best_params)
    print("best result: ")
    print(best_result)


def config_command(argv=None, prog=None):
    """``python -m recbole_alphafuse config``: every setting a run of ``--model`` on ``--dataset``
    would use (with the same flags), and the file, dict or flag it came from."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Print every setting of a run and where it came from."
    )
    parser.add_argument("--model", "-m", type=str, default="AlphaFuseSASRec", help="model name")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    args, _ = parser.parse_known_args(argv)
    config_files = config_file_list(args.config_files)
    try:
        config = Config(model=args.model, dataset=args.dataset, config_file_list=config_files)
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
    sources = config.setting_sources()
    width = min(60, max(len(f"{key} = {config[key]!r}") for key in sources))
    for key, source in sources.items():
        setting = f"{key} = {config[key]!r}"
        print(f"{setting:<{width}}  # {source}")
