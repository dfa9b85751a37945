"""What a benchmark keeps on disk: ``OUT.csv`` (a row per run, appended as it finishes),
``OUT.ranks.jsonl`` (each tested run's target ranks) and ``OUT.runs/`` (the state of the trainings
in flight, so that an interrupted benchmark resumes them)."""

import csv
import hashlib
import json
import os
from pathlib import Path

from recbole_alphafuse.benchmark.training import parse_model
from recbole_alphafuse.files import written_atomically
from recbole_alphafuse.search_space import read_setting, setting_text

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
TRIAL_RECORD = "trial.json"  # in a trial's folder of OUT.runs/: its number and setting


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


def append_ranks(path, row, evaluated, split="test"):
    """Append a run's users and target ranks of ``split`` (test, or the validation of its best
    epoch), under its CSV row's key."""
    users, ranks = evaluated
    key = {field: row[field] for field in ("dataset", "model", "stage", "setting", "seed")}
    record = {**key, "split": split, "users": [int(u) for u in users]}
    record["ranks"] = [int(r) for r in ranks]
    with open(path, "a+b") as f:
        # A line cut by a hard kill has no newline: the next record starts on a line of its own.
        cut = False
        if f.tell():
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        f.write((("\n" if cut else "") + json.dumps(record) + "\n").encode())


def read_ranks(path):
    """The records of ``append_ranks``, oldest first (a rerun's record comes after the lost
    one's; a record without a split is a test's). A line cut by a hard kill is skipped, with a note: its run's CSV row, written after it, is
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
