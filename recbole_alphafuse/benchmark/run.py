"""The whole benchmark: the studies of every dataset and model, their trainings in a pool, the
CSV and ranks written as each finishes, and the table."""

import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, wait
from functools import partial
from pathlib import Path

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.benchmark.pools import TOOLS, worker_pool
from recbole_alphafuse.benchmark.report import plot_bars, protocol, report, summaries
from recbole_alphafuse.benchmark.storage import (
    BENCHMARK_FIELDS,
    append_ranks,
    append_run,
    read_header,
    read_interrupted_trials,
    read_ranks,
    read_runs,
    record_trial,
    run_checkpoint_dir,
    runs_folder,
)
from recbole_alphafuse.benchmark.study import TESTED, Study, check_study, space_file
from recbole_alphafuse.benchmark.training import train_and_test
from recbole_alphafuse.files import written_atomically
from recbole_alphafuse.search_space import setting_text


def benchmark(
    datasets,
    models,
    trials,
    seeds,
    config_files=None,
    jobs=1,
    threads=None,
    out="benchmark",
    spaces_dir=None,
    defaults=False,
    metrics=None,
    reference=None,
    command=None,
    table_only=False,
    finalists=3,
    tool="Hyperopt",
    ray_address=None,
    gpus_per_trial=0,
    margin=2.0,
):
    """Tune, select on validation, test over seeds; write OUT.csv, OUT.md and OUT.png
    (``table_only``: the table and plot of what OUT.csv holds, with no training). The
    trainings run in ``jobs`` processes here, or as Ray tasks with ``tool="Ray"`` (see
    :func:`worker_pool`).

    The tuned setting replaces a model's defaults only where its validation over the seeds
    beats theirs by more than ``margin`` paired standard errors over the validation users
    (:meth:`Study.keeps_defaults`), so the defaults are trained at every seed whenever a margin
    is given; ``margin=None`` takes the best finalist as it is.

    Returns ``{(dataset, model): Study}``.
    """
    defaults = defaults or margin is not None
    if trials < 1 or jobs < 1 or finalists < 1 or not seeds:
        raise AlphaFuseError(
            "--trials, --finalists and --jobs must be at least 1, and --seeds name one seed."
        )
    if len(set(models)) != len(models) or len(set(datasets)) != len(datasets):
        raise AlphaFuseError("--models and --datasets must not repeat a name.")
    if tool not in TOOLS:
        raise AlphaFuseError(f"--tool {tool}: choose {' or '.join(TOOLS)}.")
    if tool == "Ray" and not table_only:
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise AlphaFuseError(
                f'--tool Ray needs Ray ({error}): `pip install -e ".[ray]"`, or leave --tool out.'
            ) from None
    metrics = metrics or ["ndcg@10", "hit@10", "mrr@10"]
    reference = reference or models[0]
    if reference not in models:
        raise AlphaFuseError(f"--reference {reference} is not one of --models.")
    spaces = {model: space_file(model, spaces_dir) for model in models}
    studies = {}
    for dataset in datasets:
        for model in models:
            config = check_study(dataset, model, spaces[model], config_files)
            studies[dataset, model] = Study(
                dataset,
                model,
                spaces[model],
                trials,
                seeds,
                defaults,
                config,
                finalists,
                margin=margin,
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, ranks_path = out.with_suffix(".csv"), out.with_suffix(".ranks.jsonl")
    header = read_header(csv_path)
    if header and "stage" not in header:
        raise AlphaFuseError(
            f"{csv_path} holds no benchmark (no 'stage' column; benchmarks/quality/results.py's tables "
            "have none): give another --out."
        )
    for row in read_runs(csv_path):
        study = studies.get((row["dataset"], row["model"]))
        if study and (row["stage"] == "trial" or int(row["seed"]) in seeds):
            study.add(row)
    for record in read_ranks(ranks_path):
        study = studies.get((record["dataset"], record["model"]))
        if study:
            key = (record["stage"], record["setting"], int(record["seed"]))
            split = study.valid_ranks if record.get("split") == "valid" else study.test_ranks
            split[key] = (record["users"], record["ranks"])
    read_interrupted_trials(runs_folder(csv_path), studies)
    _print_plan(studies, seeds, defaults, jobs, csv_path)

    protocols = {dataset: protocol(dataset, config_files) for dataset in datasets}

    def write_table():
        lines = report(
            studies, datasets, models, seeds, metrics, reference, protocols, command, config_files
        )
        with written_atomically(out.with_suffix(".md"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return lines

    if not table_only:
        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        pool = partial(worker_pool, jobs, threads, tool, ray_address, gpus_per_trial)
        _run_all(studies, jobs, pool, config_files, (csv_path, ranks_path), write_table)
    print("\n".join(write_table()))
    series = {"tuned": summaries(studies, "tuned", metrics[0])}
    if defaults:
        series["defaults"] = summaries(studies, "default", metrics[0])
    plot_bars(datasets, models, series, metrics[0], out.with_suffix(".png"))
    return studies


def share_trained_here(row):
    """The part of a finished run that this command trained, in runs, for the time estimate: a
    run resumed at epoch N that stopped after epoch E counts (E + 1 - N) / (E + 1), so that runs
    finishing early after a restart do not make the rest look shorter."""
    resumed, last_epoch = row.get("resumed_epoch"), row.get("last_epoch")
    if resumed is None or last_epoch is None:
        return 1.0
    epochs = int(last_epoch) + 1
    return max(epochs - int(resumed), 1) / epochs


def _run_task(dataset, model, stage, seed, setting, config_files, checkpoint_dir, fixed=None):
    """A worker's training, tested in the stages after the selection only; a failed trial
    (diverged, a setting the model refuses) is a row with its error, so the search goes on."""
    row = {"stage": stage, "setting": setting_text(setting)}
    try:
        result, ranks = train_and_test(
            dataset,
            model,
            seed,
            config_files,
            setting,
            test=stage in TESTED,
            fixed=fixed,
            checkpoint_dir=checkpoint_dir,
        )
        return {**row, **result}, ranks
    except Exception as error:  # any failure of one training is recorded, not fatal
        message = str(error).strip().splitlines()
        failure = {
            "dataset": dataset,
            "model": model,
            "seed": seed,
            "error": f"{type(error).__name__}: {message[0] if message else ''}",
        }
        return {**row, **failure}, None


def _run_all(studies, jobs, open_pool, config_files, paths, write_table):
    """Train what the studies ask for, ``jobs`` at a time in ``open_pool()`` (a
    :func:`worker_pool`), appending each row to the CSV (and a tested run's ranks to the ranks
    file) and rewriting the table as it finishes (an interrupted benchmark keeps them all up to
    date)."""
    csv_path, ranks_path = paths
    runs_dir = runs_folder(csv_path)
    started_at, finished_here = time.perf_counter(), 0
    with open_pool() as pool:
        running = {}
        while True:
            for study in studies.values():
                while len(running) < jobs and (task := study.next_task()):
                    stage, number, seed, setting = task
                    checkpoint_dir = run_checkpoint_dir(
                        runs_dir, study.dataset, study.model, stage, seed, setting
                    )
                    if stage == "trial":
                        record_trial(checkpoint_dir, study, number, setting)
                    future = pool.submit(
                        _run_task,
                        study.dataset,
                        study.model,
                        stage,
                        seed,
                        setting,
                        config_files,
                        str(checkpoint_dir),
                    )
                    running[future] = (study, number, checkpoint_dir)
            if not running:
                # What is left belongs to trainings this command no longer runs.
                shutil.rmtree(runs_dir, ignore_errors=True)
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                study, number, checkpoint_dir = running.pop(future)
                row, ranks = future.result()
                row["trial"] = "" if number is None else number
                fields = BENCHMARK_FIELDS + sorted(set(row) - set(BENCHMARK_FIELDS))
                key = (row["stage"], row["setting"], int(row["seed"]))
                # Before the CSV row: a run whose row is written always has its ranks.
                for split, evaluated in (ranks or {}).items():
                    if evaluated is not None:
                        append_ranks(ranks_path, row, evaluated, split)
                        (study.valid_ranks if split == "valid" else study.test_ranks)[key] = (
                            evaluated
                        )
                append_run(csv_path, row, fields)
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
                study.add({k: "" if v is None else str(v) for k, v in row.items()})
                write_table()
                finished_here += share_trained_here(row)
                left = sum(s.remaining() for s in studies.values())
                pace = (time.perf_counter() - started_at) / finished_here
                what = {
                    "trial": f"trial {number}",
                    "finalist": f"finalist trial {number} seed {row['seed']}",
                }.get(row["stage"], f"{row['stage']} seed {row['seed']}")
                outcome = row.get("error") or f"valid {row['best_valid_score']}"
                if row.get("resumed_epoch") is not None:
                    outcome += f", resumed at epoch {row['resumed_epoch']}"
                print(
                    f"{study.dataset} {study.model} {what}: {outcome} "
                    f"({row.get('seconds', '-')} s); {left} runs left, about "
                    f"{left * pace / 60:.0f} min at this pace",
                    flush=True,
                )


def _print_plan(studies, seeds, defaults, jobs, csv_path):
    print("Plan:")
    total = 0
    for study in studies.values():
        keys = ", ".join(f"{name} ({kind})" for name, (kind, _) in study.space.items())
        total += study.planned()
        start = (
            ""
            if study.grid
            else (
                ", the first at the defaults" if study.start else ", the defaults outside the space"
            )
        )
        print(
            f"  {study.dataset} {study.model}: {study.trials} trials ({study.search}{start}) of "
            f"{study.space_file} [{keys}], "
            + (
                f"the best {study.n_finalists} again at the other seeds, "
                if study.n_finalists > 1
                else ""
            )
            + f"then {len(seeds)} seeds"
            + (" tuned and at the defaults" if defaults else "")
        )
    left = sum(study.remaining() for study in studies.values())
    print(
        f"{total} trainings, {total - left} already in {csv_path}; {left} to run, {jobs} at a "
        "time. A time estimate follows the first one.",
        flush=True,
    )
