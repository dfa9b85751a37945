"""Hyperparameter search with Ray Tune: trials spread over the CPUs and GPUs of a Ray cluster.

``python run_hyper.py --tool=Ray ...`` reads the same search-space file as RecBole's
HyperTuning (lines ``name choice [..]``, ``name uniform low,high``, ``name quniform
low,high,q``, ``name loguniform low,high`` with hyperopt's meaning: the log of the value is
uniform on [low, high]). Each trial is :func:`~recbole_alphafuse.quick_start.objective_function`
in a Ray worker; the best trial is the one with the best validation score (``valid_metric``),
never the test score. Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

import csv
import math
import os
import sys
from pathlib import Path

from recbole.utils import dict2str

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.prepare import prepare_dataset
from recbole_alphafuse.quick_start import objective_function
from recbole_alphafuse.search_space import read_search_space

ALGORITHMS = ("exhaustive", "random", "bayes")
VALID_SCORE = "valid_score"


def ray_search_space(space, algo):
    """The Ray Tune search space of :func:`read_search_space`'s result: ``exhaustive`` runs
    every combination of choices (a grid), ``random`` and ``bayes`` draw from the distributions."""
    from ray import tune

    if algo == "exhaustive":
        continuous = [name for name, (kind, _) in space.items() if kind != "choice"]
        if continuous:
            raise AlphaFuseError(
                f"--algo=exhaustive needs 'choice' parameters only, {continuous} are "
                "continuous: use --algo=random or --algo=bayes."
            )
        return {name: tune.grid_search(values) for name, (_, values) in space.items()}
    draws = {
        "choice": lambda v: tune.choice(v),
        "uniform": lambda v: tune.uniform(*v),
        "quniform": lambda v: tune.quniform(*v),
        "loguniform": lambda v: tune.loguniform(math.exp(v[0]), math.exp(v[1])),
    }
    ray_space = {}
    for name, (kind, values) in space.items():
        try:
            ray_space[name] = draws[kind](values)
        except ValueError as error:  # Ray's own checks, e.g. quniform bounds divisible by q
            raise AlphaFuseError(f"search parameter '{name}' ({kind} {values}): {error}") from None
    return ray_space


def search_algorithm(algo, mode, seed):
    """Ray's searcher for ``algo``: hyperopt's TPE for ``bayes``; None (Ray's own grid or
    random draws) otherwise."""
    if algo != "bayes":
        return None
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(metric=VALID_SCORE, mode=mode, random_state_seed=seed)


def _trial(params, fixed, config_files):
    """One Ray trial: train with ``params`` over ``fixed`` and report the flat scores."""
    import ray
    from ray import tune

    # RecBole's Config reads sys.argv: the Ray worker's own flags are not settings.
    sys.argv = sys.argv[:1]
    # RecBole points CUDA_VISIBLE_DEVICES at gpu_id: make that the GPUs Ray gave this trial.
    gpu_id = ",".join(str(g) for g in ray.get_gpu_ids())
    # Checkpoints are named by model and second: trials started together need folders of their own.
    checkpoint_dir = str(Path(fixed["checkpoint_dir"]) / tune.get_context().get_trial_name())
    result = objective_function(
        {**fixed, "gpu_id": gpu_id, "checkpoint_dir": checkpoint_dir, **params}, config_files
    )
    tune.report(
        {
            VALID_SCORE: result["best_valid_score"],
            **{f"valid/{k}": v for k, v in (result["best_valid_result"] or {}).items()},
            **{f"test/{k}": v for k, v in (result["test_result"] or {}).items()},
        }
    )


def tune_with_ray(
    model,
    dataset,
    params_file,
    config_files=None,
    algo="exhaustive",
    max_evals=10,
    cpus_per_trial=1,
    gpus_per_trial=0,
    output_file="hyper_result.txt",
    ray_address=None,
    storage_path="ray_results",
):
    """Search ``params_file``'s space with Ray Tune and export every trial.

    The dataset is prepared (language vectors built) once, before the trials start. Writes
    ``output_file`` (RecBole's layout: each trial's parameters, validation and test results)
    and ``output_file`` with ``.csv`` (one row per trial).

    Returns:
        (best parameters, best trial's scores), best by the validation score.
    """
    if algo not in ALGORITHMS:
        raise AlphaFuseError(f"unknown --algo '{algo}': choose among {', '.join(ALGORITHMS)}.")
    space = ray_search_space(read_search_space(params_file), algo)
    config_files = [str(Path(f).resolve()) for f in config_files or []] or None
    config = Config(model=model, dataset=dataset, config_file_list=config_files)
    prepare_dataset(config)
    # Workers need not share the driver's working directory: give them absolute paths.
    fixed = {
        "model": model,
        "dataset": dataset,
        "data_path": str(Path(config["data_path"]).parent.resolve()),
        "checkpoint_dir": str(Path(config["checkpoint_dir"]).resolve()),
        "show_progress": False,
    }
    mode = "max" if config["valid_metric_bigger"] else "min"

    import ray
    from ray import tune

    # Trials keep the driver's working directory (relative paths in the user's settings).
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    ray.init(address=ray_address, ignore_reinit_error=True, include_dashboard=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(_trial, fixed=fixed, config_files=config_files),
                {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
            ),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=VALID_SCORE,
                mode=mode,
                search_alg=search_algorithm(algo, mode, config["seed"]),
                num_samples=1 if algo == "exhaustive" else max_evals,
            ),
            run_config=tune.RunConfig(
                name=f"{model}-{dataset}",
                storage_path=str(Path(storage_path).resolve()),
                verbose=1,
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    trials = [
        (r.config, r.metrics) for r in results if r.error is None and VALID_SCORE in r.metrics
    ]
    if not trials:
        errors = [str(r.error) for r in results if r.error is not None]
        raise AlphaFuseError(
            f"no Ray trial finished; first error: {errors[0] if errors else 'none reported'}"
        )
    export_trials(output_file, trials)
    best = results.get_best_result(metric=VALID_SCORE, mode=mode)
    return best.config, _scores(best.metrics)


def _scores(metrics):
    return {
        key: value
        for key, value in metrics.items()
        if key == VALID_SCORE or key.startswith(("valid/", "test/"))
    }


def export_trials(output_file, trials):
    """Every trial's parameters and scores: RecBole's text layout in ``output_file`` and one
    CSV row a trial beside it."""
    output_file = Path(output_file)
    blocks, rows = [], []
    for params, metrics in trials:
        scores = _scores(metrics)
        valid = {k.removeprefix("valid/"): v for k, v in scores.items() if k.startswith("valid/")}
        test = {k.removeprefix("test/"): v for k, v in scores.items() if k.startswith("test/")}
        blocks.append(
            ", ".join(f"{k}:{v}" for k, v in params.items())
            + f"\nValid result:\n{dict2str(valid)}\nTest result:\n{dict2str(test)}\n"
        )
        rows.append({**params, **scores})
    output_file.write_text("\n".join(blocks))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(output_file.with_suffix(".csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
