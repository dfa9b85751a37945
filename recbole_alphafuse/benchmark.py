"""A fair benchmark in one command: every model tuned on validation with the same budget, then
tested over seeds.

    python -m recbole_alphafuse benchmark --datasets Office-cold ml-100k-cold \\
        --models IDSASRec AlphaFuseSASRec LLMInitSASRec --trials 12 --seeds 2020 2021 2022 \\
        --defaults --jobs 2 --out benchmarks/results/tuned

For each dataset and model:

1. **Search.** ``--trials`` trainings at the first seed, each with a setting of the model's
   search space (``properties/hyper/<Model>.hyper``, or ``<Model>.hyper`` in ``--spaces``):
   every combination when the grid of ``choice`` values has no more than ``--trials`` of them,
   hyperopt's TPE otherwise: the first trial at the model's defaults (where they lie in the
   space), random draws up to a third of the trials, then TPE's proposals. A trial trains with early
   stopping on ``valid_metric`` and is never tested.
2. **Selection** on validation alone, over seeds: the ``--finalists`` best trials of the
   search are trained again at the other seeds, and the one with the best mean validation score
   over all seeds is chosen (a tie goes to the better search score). One seed's validation is
   noisy on a small dataset: its single best trial is often a lucky run that the other seeds
   do not repeat. ``--finalists 1`` chooses the search's best trial alone.
3. **Test.** The chosen setting is trained at every seed and tested at its best validation
   epoch; with ``--defaults`` the model's defaults are too, which gives the gain from tuning.

Writes ``OUT.csv`` (every trial and every run, appended as they finish: an interrupted benchmark
resumes where it stopped), ``OUT.ranks.jsonl`` (each tested run's test users and the rank it
gave each one's target), ``OUT.md`` (the table) and, where matplotlib is installed, ``OUT.png``.
While it runs, each training in flight keeps its state in ``OUT.runs/`` at every epoch (a
``-last.pth`` checkpoint; a search trial's folder also records its setting): a rerun after an
interruption continues those trainings from their last epoch, to exactly the results of an
uninterrupted run (the CSV's ``resumed_epoch`` says where one was resumed). Each folder goes
when its training is written, ``OUT.runs/`` when the benchmark is done. The table compares
models user by user on the same test users: Δ is the paired difference of the first metric,
each user's value averaged over the seeds, ± its standard error over users.
``--jobs J`` runs J trainings at once, each on cores / J threads, in processes of this machine;
with ``--tool Ray`` as Ray tasks instead (a local Ray instance, or the cluster at
``--ray_address``), each given ``--threads`` CPUs and ``--gpus_per_trial`` GPUs: the same search,
selection and files either way. ``benchmarks/results.py`` (models at their defaults, no search)
shares the runs, the CSV and the plot with it.
"""

import argparse
import csv
import hashlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import torch
import yaml

from recbole_alphafuse import PROPERTIES_DIR, AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.prepare import prepare_dataset
from recbole_alphafuse.evaluation import paired_difference
from recbole_alphafuse.files import written_atomically
from recbole_alphafuse.search_space import (
    contains,
    grid,
    read_search_space,
    read_setting,
    setting_text,
    suggest_tpe,
)

RUN_FIELDS = [
    "dataset",
    "model",
    "seed",
    "seconds",
    "best_valid_score",
    "best_epoch",
    "seconds_to_best",
    "last_epoch",
    "test_seconds",
    "resumed_epoch",
]
BENCHMARK_FIELDS = ["stage", "trial", "setting", *RUN_FIELDS, "error"]
TESTED = ("tuned", "default")  # the stages after the selection; trials and finalists never are
TRIAL_RECORD = "trial.json"  # in a trial's folder of OUT.runs/: its number and setting
TOOLS = ("Hyperopt", "Ray")  # where the trainings run: processes of this machine, or Ray tasks


def machine():
    """The hardware a table was measured on, for its header."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


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


def protocol(dataset, config_files):
    config = Config(model="SASRec", dataset=dataset, config_file_list=config_files)
    return "cold-start users" if config["benchmark_filename"] else "warm, leave-one-out"


def limit_threads(threads):
    torch.set_num_threads(threads)


def _stop(number, frame):
    sys.exit(f"stopped by signal {number}")


@contextmanager
def worker_pool(jobs, threads, tool="Hyperopt", ray_address=None, gpus_per_trial=0):
    """Where the trainings run: ``jobs`` processes of ``threads`` threads each, or with
    ``tool="Ray"`` Ray tasks of ``threads`` CPUs and ``gpus_per_trial`` GPUs each. Either has
    ``submit(function, *args)`` -> a Future. An interruption (Ctrl-C, a SIGTERM) stops the
    trainings in flight too, not only this process; what finished is kept by the caller for a
    rerun."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        if tool == "Ray":
            import ray

            ray.init(address=ray_address, ignore_reinit_error=True, include_dashboard=False)
            try:
                yield RayPool(threads, gpus_per_trial)
            finally:
                ray.shutdown()  # its tasks in flight end with it
        else:
            with ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_threads,
                initargs=(threads,),
            ) as pool:
                try:
                    yield pool
                except BaseException:
                    for child in multiprocessing.active_children():
                        child.terminate()
                    raise
    finally:
        signal.signal(signal.SIGTERM, previous)


class RayPool:
    """``submit`` as a process pool's, each call a Ray task of ``threads`` CPUs and ``gpus``
    GPUs."""

    def __init__(self, threads, gpus):
        import ray

        self.threads = threads
        self.task = ray.remote(num_cpus=threads, num_gpus=gpus)(_in_ray_task)

    def submit(self, function, *args):
        return self.task.remote(self.threads, function, *args).future()


def _in_ray_task(threads, function, *args):
    """``function(*args)`` in a Ray worker, on ``threads`` threads and the GPUs Ray gave the
    task: RecBole sets CUDA_VISIBLE_DEVICES from ``gpu_id``, so that must name them."""
    import ray

    limit_threads(threads)
    sys.argv = sys.argv[:1]  # RecBole's Config reads sys.argv: the worker's are not settings
    return function(*args, fixed={"gpu_id": ",".join(map(str, ray.get_gpu_ids()))})


def train_and_test(
    dataset, model, seed, config_files, setting=None, test=True, fixed=None, checkpoint_dir=None
):
    """One training in a worker: ``model`` (``Name:key=value,...``) with ``setting`` over it
    (and over ``fixed``, the worker's own settings), early stopping on validation, then (if
    ``test``) the test metrics of the best epoch. With ``checkpoint_dir`` the training keeps
    its state there at every epoch and, when that folder holds one from an interrupted
    attempt, resumes from it exactly; without it the checkpoints go to a temporary folder.
    Returns (CSV row, test users and target ranks or None)."""
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
    return row, result["test_ranks"]


def read_runs(path):
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_header(path):
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def append_run(path, row, fields):
    """Append ``row``. A file from an older version keeps its columns; the ``fields`` it lacks
    are added to its header (rewritten once), its rows' new cells left empty."""
    header = read_header(path)
    missing = [field for field in fields if field not in header]
    if header and missing:
        runs = read_runs(path)
        with written_atomically(path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=header + missing)
            writer.writeheader()
            writer.writerows(runs)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header + missing, extrasaction="ignore")
        if not header:
            writer.writeheader()
        writer.writerow(row)


def append_ranks(path, row, test_ranks):
    """Append a tested run's test users and target ranks, under its CSV row's key."""
    users, ranks = test_ranks
    key = {field: row[field] for field in ("dataset", "model", "stage", "setting", "seed")}
    record = {**key, "users": [int(u) for u in users], "ranks": [int(r) for r in ranks]}
    with open(path, "a+b") as f:
        # A line cut by a hard kill has no newline: the next record starts on a line of its own.
        cut = False
        if f.tell():
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        f.write((("\n" if cut else "") + json.dumps(record) + "\n").encode())


def read_ranks(path):
    """The records of ``append_ranks``, oldest first (a rerun's record comes after the lost one's).
    A line cut by a hard kill is skipped, with a note: its run's CSV row, written after it, is
    missing too, so the run is trained again."""
    if not path.is_file():
        return []
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"{path}, line {number}: cut short (an interrupted write), skipped.")
    return records


def mean_and_spread(runs, metric):
    """(mean, standard deviation, n) of ``metric`` over ``runs``; None without a value."""
    values = [float(r[metric]) for r in runs if r.get(metric) not in (None, "")]
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, len(values)


def plot_bars(datasets, labels, series, metric, path):
    """One panel per dataset, a horizontal bar per label and series: ``series`` maps a series
    name to {(dataset, label): (mean, spread, n)}. Skipped, with a note, without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print(f"{path} not drawn: `pip install matplotlib` for the plot.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(
        1,
        len(datasets),
        figsize=(4.5 * len(datasets) + 3, 0.35 * len(labels) * len(series) + 1.2),
        sharey=True,
        squeeze=False,
    )
    height = 0.8 / len(series)
    for panel, dataset in zip(panels[0], datasets):
        for offset, (name, values) in enumerate(series.items()):
            bars = [values.get((dataset, label)) or (0, 0, 0) for label in labels]
            panel.barh(
                [i + offset * height for i in range(len(labels))],
                [b[0] for b in bars],
                height=height,
                xerr=[b[1] for b in bars],
                capsize=2,
                label=name if len(series) > 1 else None,
            )
        panel.set_title(dataset)
        panel.set_xlabel(metric)
    panels[0][0].set_yticks(
        [i + (len(series) - 1) * height / 2 for i in range(len(labels))], labels, fontsize="small"
    )
    panels[0][0].invert_yaxis()
    if len(series) > 1:
        panels[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


class Study:
    """The search, the finalists' runs and the seed runs of one model on one dataset."""

    def __init__(self, dataset, model, space_file, trials, seeds, defaults, config, finalists=3):
        self.dataset, self.model, self.space_file = dataset, model, space_file
        self.space = read_search_space(space_file)
        self.seeds, self.defaults = seeds, defaults
        self.n_finalists = finalists if len(seeds) > 1 else 1
        self.bigger = config["valid_metric_bigger"]
        combinations = grid(self.space)
        self.grid = combinations if combinations and len(combinations) <= trials else None
        self.trials = len(self.grid) if self.grid else trials
        # A search starts from the model's defaults where they are a point of its space, so
        # that it never ends below them on validation.
        start = {key: config[key] for key in self.space}
        self.start = start if contains(self.space, start) else None
        self.n_startup = max(1, trials // 3)
        self.finished = {}  # trial number -> its CSV row
        self.finalist_runs = {}  # (setting text, seed) -> CSV row of a finalist's other seed
        self.tested = []  # CSV rows of the tuned and default runs
        self.test_ranks = {}  # (stage, setting text, seed) -> (test users, target ranks)
        self.started = set()  # trial numbers and (stage, ..., seed) handed out, not finished
        self.proposed = {}  # trial number -> the setting handed out
        self.interrupted = {}  # trial number -> its setting, of a trial in flight at a stop

    @property
    def search(self):
        return "grid" if self.grid else "TPE"

    def add(self, row):
        """Take a finished row (from the CSV or a worker)."""
        if row["stage"] == "trial":
            number = int(row["trial"])
            self.started.discard(number)
            if number < self.trials:
                self.finished[number] = row
        elif row["stage"] == "finalist":
            key = (row["setting"], int(row["seed"]))
            self.started.discard(("finalist", *key))
            self.finalist_runs[key] = row
        else:
            self.started.discard((row["stage"], int(row["seed"])))
            self.tested.append(row)

    def runs(self, stage, failed=False):
        """{seed: row} of the tested runs of ``stage``: the chosen setting's for 'tuned'; those
        that failed too with ``failed`` (a failure is recorded once, not retried)."""
        wanted = None
        if stage == "tuned" and self.tuned_are_defaults():
            return self.runs("default", failed)
        if stage == "tuned":
            setting = self.chosen()[1]
            if setting is None:
                return {}
            wanted = setting_text(setting)
        rows = {}
        for row in self.tested:
            seed = int(row["seed"])
            if row["stage"] == stage and seed in self.seeds and (failed or not row.get("error")):
                if stage == "default" or row["setting"] == wanted:
                    rows[seed] = row
        return rows

    def ranks_of(self, stage):
        """(users, target ranks) of each run of ``stage`` (see :meth:`runs`); None where a run
        has none (run before they were recorded)."""
        rows = self.runs(stage).values()
        found = [self.test_ranks.get((r["stage"], r["setting"], int(r["seed"]))) for r in rows]
        return found if found and None not in found else None

    def tuned_are_defaults(self):
        """Whether the chosen setting is the model's defaults, which ``defaults`` runs anyway:
        the same trainings, so they are not run twice."""
        setting = self.chosen()[1]
        return self.defaults and setting is not None and setting == self.start

    def _loss(self, row):
        if row.get("error") or row["best_valid_score"] in (None, ""):
            return None
        score = float(row["best_valid_score"])
        return -score if self.bigger else score

    def finalists(self):
        """Trial numbers of the best distinct settings of a finished search, best first; None
        while the search runs."""
        if len(self.finished) < self.trials:
            return None
        scored = sorted(
            (loss, n) for n, row in self.finished.items() if (loss := self._loss(row)) is not None
        )
        numbers, settings = [], set()
        for _, number in scored:
            if self.finished[number]["setting"] not in settings:
                settings.add(self.finished[number]["setting"])
                numbers.append(number)
        return numbers[: self.n_finalists]

    def finalist_rows(self, number):
        """Trial ``number``'s runs at every seed (None where one has not finished)."""
        trial = self.finished[number]
        others = [self.finalist_runs.get((trial["setting"], seed)) for seed in self.seeds[1:]]
        return [trial, *others]

    def chosen(self):
        """(trial number, setting) of the finalist with the best mean validation score over the
        seeds, once every finalist has run at every seed; (None, None) before that."""
        finalists = self.finalists()
        if not finalists:
            return None, None
        if len(finalists) == 1:
            number = finalists[0]
        else:
            scored = []
            for rank, number in enumerate(finalists):
                rows = self.finalist_rows(number)
                if None in rows:
                    return None, None
                losses = [self._loss(row) for row in rows]
                if None not in losses:  # a finalist that failed at a seed is out
                    scored.append((statistics.mean(losses), rank, number))
            if not scored:
                return None, None
            number = min(scored)[2]
        return number, read_setting(self.finished[number]["setting"])

    def next_task(self):
        """(stage, trial number, seed, setting) of the next training to start, or None while
        nothing can start before a running one finishes."""
        free = [n for n in range(self.trials) if n not in self.finished and n not in self.started]
        if free:
            number = free[0]
            if number in self.interrupted:
                # TPE would now propose from more finished trials: hand out the same setting.
                setting = self.interrupted.pop(number)
            elif self.grid:
                setting = self.grid[number]
            elif number == 0 and self.start is not None:
                setting = self.start
            else:
                setting = self._propose(number)
            self.started.add(number)
            self.proposed[number] = setting
            return "trial", number, self.seeds[0], setting
        finalists = self.finalists() or []
        for number in finalists if len(finalists) > 1 else []:
            text = self.finished[number]["setting"]
            for seed in self.seeds[1:]:
                key = (text, seed)
                if key not in self.finalist_runs and ("finalist", *key) not in self.started:
                    self.started.add(("finalist", *key))
                    return "finalist", number, seed, read_setting(text)
        setting = self.chosen()[1]
        tuned = setting is not None and not self.tuned_are_defaults()
        stages = (["tuned"] if tuned else []) + (["default"] if self.defaults else [])
        for stage in stages:
            done = self.runs(stage, failed=True)
            for seed in self.seeds:
                if seed not in done and (stage, seed) not in self.started:
                    self.started.add((stage, seed))
                    return stage, None, seed, setting if stage == "tuned" else {}
        return None

    def _propose(self, number):
        """TPE's proposal for trial ``number``. Over a space of choices TPE may propose a
        setting tried before: it draws again, up to 5 times, then a random untried one."""
        history = [
            (read_setting(self.finished[n]["setting"]), self._loss(self.finished[n]))
            for n in sorted(self.finished)
        ]
        tried = {setting_text(setting) for setting, _ in history}
        tried |= {setting_text(self.proposed[n]) for n in self.started if n in self.proposed}
        for attempt in range(5):
            setting = suggest_tpe(self.space, history, number + 1000 * attempt, self.n_startup)
            if setting_text(setting) not in tried:
                return setting
        untried = [c for c in grid(self.space) or [] if setting_text(c) not in tried]
        return random.Random(number).choice(untried) if untried else setting

    def planned(self):
        """Trainings of the whole study: trials, finalists' other seeds, tuned and defaults."""
        finalists = min(self.n_finalists, self.trials)
        finalist_runs = finalists * (len(self.seeds) - 1) if finalists > 1 else 0
        return self.trials + finalist_runs + len(self.seeds) * (1 + self.defaults)

    def remaining(self):
        """Trainings left to run (the later stages counted until a failed search rules them
        out)."""
        finalists = self.finalists()
        if finalists is None:
            planned = self.planned()
        else:
            seeds = len(self.seeds) - 1 if len(finalists) > 1 else 0
            ruled_out = not finalists or (
                self.chosen()[1] is None
                and all(None not in self.finalist_rows(n) for n in finalists)
            )
            tuned = 0 if ruled_out or self.tuned_are_defaults() else len(self.seeds)
            planned = self.trials + len(finalists) * seeds + tuned
            planned += len(self.seeds) if self.defaults else 0
        done = len(self.finished) + len(self.runs("default", True))
        done += 0 if self.tuned_are_defaults() else len(self.runs("tuned", True))
        done += sum(
            1
            for n in finalists or []
            if len(finalists) > 1
            for row in self.finalist_rows(n)[1:]
            if row is not None
        )
        return planned - done


def runs_folder(csv_path):
    """``OUT.runs/``: where the trainings in flight of the table ``OUT.csv`` keep their state."""
    return Path(csv_path).with_suffix(".runs").absolute()


def run_checkpoint_dir(runs_dir, dataset, model, stage, seed, setting):
    """The folder where one training of a benchmark keeps its state: the same for the same
    training (dataset, model, stage, seed and setting) in every invocation, so that a rerun
    after an interruption resumes the trainings that were in flight."""
    key = json.dumps([dataset, model, stage, seed, setting_text(setting)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return Path(runs_dir) / f"{dataset}-{parse_model(model)[0]}-{stage}-{seed}-{digest}"


def record_trial(checkpoint_dir, study, number, setting):
    """Write which trial of ``study`` a folder of ``OUT.runs/`` trains, and its setting."""
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    record = {"dataset": study.dataset, "model": study.model, "trial": number}
    with written_atomically(Path(checkpoint_dir) / TRIAL_RECORD, "w") as f:
        json.dump({**record, "setting": setting_text(setting)}, f)


def read_interrupted_trials(runs_dir, studies):
    """Give each study the trials that were in flight when a benchmark stopped, with their
    settings, so that the rerun trains them again with these settings and resumes them."""
    for path in sorted(Path(runs_dir).glob(f"*/{TRIAL_RECORD}")):
        record = json.loads(path.read_text())
        study = studies.get((record["dataset"], record["model"]))
        if study and record["trial"] not in study.finished:
            study.interrupted[record["trial"]] = read_setting(record["setting"])


def _run_task(dataset, model, stage, seed, setting, config_files, checkpoint_dir, fixed=None):
    """A worker's training, tested in the stages after the selection only; a failed trial
    (diverged, a setting the model refuses) is a row with its error, so the search goes on."""
    row = {"stage": stage, "setting": setting_text(setting)}
    try:
        result, test_ranks = train_and_test(
            dataset,
            model,
            seed,
            config_files,
            setting,
            test=stage in TESTED,
            fixed=fixed,
            checkpoint_dir=checkpoint_dir,
        )
        return {**row, **result}, test_ranks
    except Exception as error:  # any failure of one training is recorded, not fatal
        message = str(error).strip().splitlines()
        failure = {
            "dataset": dataset,
            "model": model,
            "seed": seed,
            "error": f"{type(error).__name__}: {message[0] if message else ''}",
        }
        return {**row, **failure}, None


def space_file(model, spaces_dir):
    """The search-space file of ``model`` (``Name`` or ``Name:key=value,...``)."""
    name = parse_model(model)[0]
    folders = ([Path(spaces_dir)] if spaces_dir else []) + [PROPERTIES_DIR / "hyper"]
    for folder in folders:
        path = folder / f"{name}.hyper"
        if path.is_file():
            return path
    raise AlphaFuseError(
        f"no search space for {name}: write {name}.hyper (one line a parameter, e.g. "
        f"`learning_rate choice [0.0003,0.001,0.003]`) in --spaces DIR, or leave {name} out."
    )


def check_study(dataset, model, path, config_files):
    """Refuse, before any training, a model or dataset that cannot run, or a search key the
    model does not read; prepare the dataset's files once. Returns the model's Config."""
    name, overrides = parse_model(model)
    config = Config(
        model=name, dataset=dataset, config_file_list=config_files, config_dict=overrides
    )
    unknown = [key for key in read_search_space(path) if key not in config]
    if unknown:
        raise AlphaFuseError(
            f"{path} searches {', '.join(unknown)}, which {name} does not read: fix the name "
            f"or remove the line (`python -m recbole_alphafuse config --model={name}` lists "
            "its settings)."
        )
    prepare_dataset(config)
    return config


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
):
    """Tune, select on validation, test over seeds; write OUT.csv, OUT.md and OUT.png
    (``table_only``: the table and plot of what OUT.csv holds, with no training). The
    trainings run in ``jobs`` processes here, or as Ray tasks with ``tool="Ray"`` (see
    :func:`worker_pool`).

    Returns ``{(dataset, model): Study}``.
    """
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
                dataset, model, spaces[model], trials, seeds, defaults, config, finalists
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, ranks_path = out.with_suffix(".csv"), out.with_suffix(".ranks.jsonl")
    header = read_header(csv_path)
    if header and "stage" not in header:
        raise AlphaFuseError(
            f"{csv_path} holds no benchmark (no 'stage' column; benchmarks/results.py's tables "
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
            study.test_ranks[key] = (record["users"], record["ranks"])
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
    series = {"tuned": _summaries(studies, "tuned", metrics[0])}
    if defaults:
        series["defaults"] = _summaries(studies, "default", metrics[0])
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
                row, test_ranks = future.result()
                row["trial"] = "" if number is None else number
                fields = BENCHMARK_FIELDS + sorted(set(row) - set(BENCHMARK_FIELDS))
                if test_ranks is not None:
                    # Before the CSV row: a run whose row is written always has its ranks.
                    append_ranks(ranks_path, row, test_ranks)
                    study.test_ranks[row["stage"], row["setting"], int(row["seed"])] = test_ranks
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


def _summaries(studies, stage, metric):
    summaries = {}
    for key, study in studies.items():
        summaries[key] = mean_and_spread(list(study.runs(stage).values()), metric)
    return summaries


def _paired(ranks, reference_ranks, metric):
    """' (Δ mean ± standard error)' of ``metric`` between two stages' runs, '' without ranks."""
    difference = (
        paired_difference(ranks, reference_ranks, metric) if ranks and reference_ranks else None
    )
    return f" (Δ {difference[0]:+.4f} ± {difference[1]:.4f})" if difference else ""


def report(studies, datasets, models, seeds, metrics, reference, protocols, command, config_files):
    """The markdown table: tuned test metrics over seeds, relative to ``reference``, with the
    trials, the chosen setting and (where run) the defaults and the gain from tuning."""
    first = metrics[0]
    finalists = next(iter(studies.values())).n_finalists
    tuned, default = _summaries(studies, "tuned", first), _summaries(studies, "default", first)
    lines = [
        f"Command: `{command}`" if command else "",
        f"Machine: {machine()}.",
        f"Config files: {', '.join(config_files) if config_files else 'none (the defaults)'}.",
        (
            f"Each model: its trials at seed {seeds[0]}; "
            + (
                f"its best {finalists} trials (finalists) trained again at the other seeds; the "
                "setting with the best mean validation score chosen"
                if finalists > 1
                else "the setting with the best validation score chosen"
            )
            + f" (no trial or finalist is tested); then the chosen setting trained and tested at "
            f"seeds {', '.join(map(str, seeds))}: test metrics at the best validation epoch, mean "
            "± standard deviation over seeds."
        ),
        (
            f"Δ: the difference in {first} user by user on the same test users (each user's "
            f"value averaged over the seeds), ± its standard error over users: tuned against "
            f"{reference} tuned, defaults against {reference}'s defaults, and tuned against the "
            "model's defaults. A Δ within about twice its error may well reverse on another "
            "sample of users."
        ),
    ]
    for dataset in datasets:
        lines += [
            "",
            f"### {dataset} ({protocols[dataset]})",
            "",
            "| model | trials | chosen trial's valid | valid over seeds, tuned / defaults | "
            + " | ".join(metrics)
            + f" | vs {reference} | defaults {first} | gain from tuning | chosen setting |",
            "|---|---|---|---|" + "---|" * (len(metrics) + 4),
        ]
        anchor = tuned.get((dataset, reference))
        anchor_ranks = studies[dataset, reference].ranks_of("tuned")
        anchor_default_ranks = studies[dataset, reference].ranks_of("default")
        for model in models:
            study = studies[dataset, model]
            number, setting = study.chosen()
            runs = list(study.runs("tuned").values())
            cells = []
            for metric in metrics:
                value = mean_and_spread(runs, metric)
                cells.append(f"{value[0]:.4f} ± {value[1]:.4f} ({value[2]})" if value else "-")
            mine, base = tuned.get((dataset, model)), default.get((dataset, model))
            ranks = study.ranks_of("tuned")
            versus = f"{mine[0] / anchor[0] - 1:+.1%}" if mine and anchor and anchor[0] else "-"
            versus += _paired(ranks, anchor_ranks, first)
            versus = "" if model == reference else versus
            default_ranks = study.ranks_of("default")
            if study.tuned_are_defaults():
                gain = "none: the defaults were chosen"
            else:
                gain = f"{mine[0] / base[0] - 1:+.1%}" if mine and base and base[0] else "-"
                gain += _paired(ranks, default_ranks, first)
            base_cell = f"{base[0]:.4f} ± {base[1]:.4f}" if base else "-"
            if base and model != reference:
                base_cell += _paired(default_ranks, anchor_default_ranks, first)
            best = study.finished[number]["best_valid_score"] if number is not None else "-"
            # The search saw one seed: the other seeds' validation shows whether its pick holds.
            valid = [
                mean_and_spread(list(study.runs(stage).values()), "best_valid_score")
                for stage in ("tuned", "default")
            ]
            valid = " / ".join(f"{v[0]:.4f}" if v else "-" for v in valid)
            count = min(study.n_finalists, study.trials)
            finalists_run = f" + {count} finalists" if count > 1 else ""
            lines.append(
                f"| {model} | {len(study.finished)}/{study.trials} {study.search}{finalists_run} "
                f"| {best} | "
                f"{valid} | "
                + " | ".join(cells)
                + f" | {versus} | {base_cell} | {gain} | "
                + f"{'`' + setting_text(setting) + '`' if setting is not None else '-'} |"
            )
    return lines


def benchmark_command(argv=None, prog=None):
    """``python -m recbole_alphafuse benchmark``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="Name or Name:key=value,...")
    parser.add_argument("--trials", type=int, default=12, help="search trainings per model")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument(
        "--finalists",
        type=int,
        default=3,
        help="best trials trained again at the other seeds, chosen by mean validation",
    )
    parser.add_argument("--config_files", nargs="*", default=[], help="fixed settings (yaml)")
    parser.add_argument("--defaults", action="store_true", help="test the defaults too")
    parser.add_argument("--spaces", default=None, help="folder of <Model>.hyper files first")
    parser.add_argument("--metrics", nargs="+", default=None, help="test metrics of the table")
    parser.add_argument("--reference", default=None, help="model the others are compared to")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once")
    parser.add_argument("--threads", type=int, default=None, help="per training (cores / jobs)")
    parser.add_argument(
        "--tool",
        choices=TOOLS,
        default="Hyperopt",
        help="run the trainings in processes here (Hyperopt) or as Ray tasks (Ray)",
    )
    parser.add_argument("--ray_address", default=None, help="Ray: cluster to join (default local)")
    parser.add_argument("--gpus_per_trial", type=float, default=0, help="Ray: GPUs a training")
    parser.add_argument(
        "--out",
        required=True,
        help="path prefix of the .csv, .ranks.jsonl, .md and .png (and of .runs/, the "
        "trainings in flight, while it runs)",
    )
    parser.add_argument(
        "--table_only", action="store_true", help="write the table of the CSV so far, train nothing"
    )
    args = parser.parse_args(argv)
    # The command that trains: the table says how to reproduce it, --table_only or not.
    flags = [flag for flag in argv or [] if flag != "--table_only"]
    command = " ".join([prog or "python -m recbole_alphafuse benchmark", *flags])
    # RecBole's Config reads sys.argv: the workers must not see the flags above as settings.
    sys.argv = sys.argv[:1]
    try:
        benchmark(
            args.datasets,
            args.models,
            args.trials,
            args.seeds,
            config_files=args.config_files or None,
            jobs=args.jobs,
            threads=args.threads,
            out=args.out,
            spaces_dir=args.spaces,
            defaults=args.defaults,
            metrics=args.metrics,
            reference=args.reference,
            command=command,
            table_only=args.table_only,
            finalists=args.finalists,
            tool=args.tool,
            ray_address=args.ray_address,
            gpus_per_trial=args.gpus_per_trial,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
