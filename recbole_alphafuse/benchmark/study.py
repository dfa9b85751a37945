"""One model on one dataset: its search on validation, the finalists trained again at the other
seeds, the selection, and the tested runs."""

import random
import statistics
from pathlib import Path

from recbole_alphafuse import PROPERTIES_DIR, AlphaFuseError
from recbole_alphafuse.benchmark.training import parse_model
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.prepare import prepare_dataset
from recbole_alphafuse.evaluation import paired_difference
from recbole_alphafuse.search_space import (
    contains,
    grid,
    read_search_space,
    read_setting,
    setting_text,
    suggest_tpe,
)

TESTED = ("tuned", "default")  # the stages after the selection; trials and finalists never are


class Study:
    """The search, the finalists' runs and the seed runs of one model on one dataset."""

    def __init__(
        self, dataset, model, space_file, trials, seeds, defaults, config, finalists=3, margin=None
    ):
        self.dataset, self.model, self.space_file = dataset, model, space_file
        self.space = read_search_space(space_file)
        self.seeds, self.defaults = seeds, defaults
        self.n_finalists = finalists if len(seeds) > 1 else 1
        self.bigger = config["valid_metric_bigger"]
        # Paired standard errors over the validation users by which the tuned setting must beat
        # the defaults to replace them (None: the best finalist replaces them as it is).
        self.margin = margin if defaults else None
        self.valid_metric = config["valid_metric"].lower() if "valid_metric" in config else None
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
        self.valid_ranks = {}  # the same for the validation of each run's best epoch
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
        """Whether the chosen setting is the model's defaults, which ``defaults`` runs anyway (the
        same trainings, so they are not run twice), or the defaults are kept because the chosen
        setting did not beat them by the margin."""
        setting = self.chosen()[1]
        if not self.defaults or setting is None:
            return False
        return setting == self.start or self.keeps_defaults() is True

    def validation_gain(self):
        """The chosen setting against the defaults on validation, user by user at the seeds the
        chosen setting ran (its trial and finalist runs), each user's value averaged over them:
        (mean, standard error, users); None where the ranks are missing (runs recorded without
        them, or a metric that is not single-target) or the defaults have not all run."""
        number, setting = self.chosen()
        if setting is None or self.valid_metric is None:
            return None
        text = setting_text(setting)
        defaults = self.runs("default")
        candidate, reference = [], []
        for row in filter(None, self.finalist_rows(number)):
            seed = int(row["seed"])
            if seed not in defaults:
                return None
            candidate.append(self.valid_ranks.get((row["stage"], text, seed)))
            default_row = defaults[seed]
            reference.append(self.valid_ranks.get(("default", default_row["setting"], seed)))
        if None in candidate or None in reference:
            return None
        return paired_difference(candidate, reference, self.valid_metric)

    def keeps_defaults(self):
        """With a margin: True where the chosen setting's validation gain over the defaults is
        within ``margin`` standard errors (or a loss), False where it is beyond, None while that
        cannot be known yet (the defaults still running) or without a margin. Without
        validation ranks to pair the margin cannot apply, and the chosen setting is taken."""
        setting = self.chosen()[1]
        if self.margin is None or setting is None or setting == self.start:
            return None
        defaults_done = self.runs("default", failed=True)
        if any(seed not in defaults_done for seed in self.seeds):
            return None
        gain = self.validation_gain()
        if gain is None:
            return False
        mean, error, _ = gain
        better = mean if self.bigger else -mean
        return not better > self.margin * error

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
        # With a margin the defaults run first: the tuned setting replaces them or not by how it
        # compares with them on validation.
        decided = self.margin is None or setting == self.start or self.keeps_defaults() is not None
        tuned = setting is not None and decided and not self.tuned_are_defaults()
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
