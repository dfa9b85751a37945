"""The benchmark: search spaces, TPE one trial at a time, selection on validation alone, resume."""

import csv
import json
import multiprocessing
import os
import signal
import time
from functools import partial

import numpy as np
import pytest
import yaml
from conftest import FAST_CONFIG, SLICE

from recbole_alphafuse import PROPERTIES_DIR, AlphaFuseError
from recbole_alphafuse.benchmark.pools import worker_pool
from recbole_alphafuse.benchmark.report import report
from recbole_alphafuse.benchmark.run import benchmark, share_trained_here
from recbole_alphafuse.benchmark.storage import (
    append_ranks,
    read_interrupted_trials,
    read_ranks,
    record_trial,
    run_checkpoint_dir,
)
from recbole_alphafuse.benchmark.study import Study
from recbole_alphafuse.benchmark.training import parse_model, train_and_test
from recbole_alphafuse.config import Config
from recbole_alphafuse.evaluation import metric_values, paired_difference
from recbole_alphafuse.registry import plugin_models
from recbole_alphafuse.search_space import (
    contains,
    grid,
    read_search_space,
    read_setting,
    setting_text,
    suggest_tpe,
)


def test_grid_lists_every_combination_in_file_order():
    space = {"a": ("choice", [1, 2]), "b": ("choice", ["x", "y", "z"])}
    assert grid(space) == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]
    assert grid({**space, "c": ("uniform", [0.0, 1.0])}) is None


def test_tpe_proposes_inside_the_space_and_the_same_for_the_same_history():
    space = {
        "lr": ("choice", [0.001, 0.01]),
        "wd": ("choice", [0.0, 0.000001]),
        "beta": ("loguniform", [-4.0, 0.0]),
    }
    history = []
    for number in range(6):
        setting = suggest_tpe(space, history, number, n_startup=2)
        assert setting == suggest_tpe(space, history, number, n_startup=2)
        assert setting["lr"] in (0.001, 0.01) and setting["wd"] in (0.0, 1e-6)
        assert 0.018 < setting["beta"] <= 1.0
        # Through the CSV's text and back, as a resumed search reads it (1e-06 stays a number).
        setting = read_setting(setting_text(setting))
        # A failed trial (None) counts as the worst, and the search goes on.
        history.append((setting, None if number == 1 else setting["beta"]))


def test_contains_checks_every_kind_of_parameter():
    space = {
        "a": ("choice", [1, 2]),
        "b": ("uniform", [0.0, 1.0]),
        "c": ("loguniform", [-2.0, 0.0]),
    }
    assert contains(space, {"a": 2, "b": 1.0, "c": 0.2})
    assert not contains(space, {"a": 3, "b": 0.5, "c": 0.2})
    assert not contains(space, {"a": 1, "b": 1.5, "c": 0.2})
    assert not contains(space, {"a": 1, "b": 0.5, "c": 0.1})


@pytest.mark.parametrize(("default_lr", "starts_at_defaults"), [(0.001, True), (0.002, False)])
def test_a_tpe_search_starts_at_the_defaults_when_they_are_in_its_space(
    tmp_path, default_lr, starts_at_defaults
):
    path = tmp_path / "M.hyper"
    path.write_text("learning_rate choice [0.0003,0.001,0.003]\nweight_decay choice [0.0,0.01]\n")
    config = {"valid_metric_bigger": True, "learning_rate": default_lr, "weight_decay": 0.0}
    study = Study("D", "M", path, trials=4, seeds=[1], defaults=False, config=config)
    stage, number, seed, setting = study.next_task()
    assert (stage, number, seed) == ("trial", 0, 1)
    defaults = {"learning_rate": default_lr, "weight_decay": 0.0}
    assert (setting == defaults) == starts_at_defaults
    assert contains(study.space, setting)
    # The next trial may start before the first ends: another number, a fresh proposal.
    assert study.next_task()[1] == 1


def test_tpe_does_not_propose_a_setting_twice(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [0,1,2,3,4,5,6,7]\n")
    config = {"valid_metric_bigger": True, "a": 0}
    # 8 choices, 7 trials: TPE, which left alone keeps proposing the best one found, a = 4.
    study = Study("D", "M", path, trials=7, seeds=[1], defaults=False, config=config)
    for _ in range(7):
        _, number, _, setting = study.next_task()
        score = 1 / (1 + abs(setting["a"] - 4))
        study.add(
            {
                "stage": "trial",
                "trial": str(number),
                "setting": setting_text(setting),
                "best_valid_score": str(score),
            }
        )
    assert len({row["setting"] for row in study.finished.values()}) == 7
    assert study.chosen()[1] == {"a": 4}


def test_a_trial_in_flight_at_a_stop_is_handed_its_setting_again(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [0,1,2,3,4,5,6,7]\n")
    config = {"valid_metric_bigger": True, "a": 0}

    def score(setting):
        return 1 / (1 + abs(setting["a"] - 4))

    def study_with_finished(handed, numbers):
        study = Study("D", "M", path, trials=6, seeds=[1], defaults=False, config=config)
        for number in numbers:
            _finished(study, "trial", handed[number], 1, score(handed[number]), number)
        return study

    first = Study("D", "M", path, trials=6, seeds=[1], defaults=False, config=config)
    handed = {}
    for _ in range(3):
        _, number, _, setting = first.next_task()
        handed[number] = setting
    for number in (0, 1):
        _finished(first, "trial", handed[number], 1, score(handed[number]), number)
    _, number, _, handed[3] = first.next_task()
    assert number == 3
    _finished(first, "trial", handed[3], 1, score(handed[3]), 3)
    # Stopped with trial 2 in flight: its folder records it (trial 3's record is stale).
    runs_dir = tmp_path / "M.runs"
    for number in (2, 3):
        folder = run_checkpoint_dir(runs_dir, "D", "M", "trial", 1, handed[number])
        record_trial(folder, first, number, handed[number])
    # From the trials finished by now, TPE would propose another setting for trial 2.
    assert study_with_finished(handed, (0, 1, 3)).next_task()[3] != handed[2]
    rerun = study_with_finished(handed, (0, 1, 3))
    read_interrupted_trials(runs_dir, {("D", "M"): rerun})
    assert rerun.next_task() == ("trial", 2, 1, handed[2])
    assert rerun.next_task()[1] == 4


def _finished(study, stage, setting, seed, score, number=""):
    row = {"stage": stage, "trial": str(number), "setting": setting_text(setting)}
    row |= {"seed": str(seed), "best_valid_score": "" if score is None else str(score)}
    study.add({**row, "error": "RuntimeError: diverged" if score is None else ""})


def test_the_finalists_run_at_the_other_seeds_and_the_best_mean_validation_wins(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [0,1,2,3,4]\n")
    config = {"valid_metric_bigger": True, "a": 0}
    study = Study("D", "M", path, trials=5, seeds=[1, 2, 3], defaults=False, config=config)
    scores = [0.10, 0.30, 0.25, 0.05, 0.20]  # a = 1 is the search's best
    for a, score in enumerate(scores):
        assert study.next_task() == ("trial", a, 1, {"a": a})
        _finished(study, "trial", {"a": a}, 1, score, a)
    assert study.chosen() == (None, None)  # not before the finalists have run
    tasks = [study.next_task() for _ in range(6)]
    assert {(stage, number, seed) for stage, number, seed, _ in tasks} == {
        ("finalist", number, seed) for number in (1, 2, 4) for seed in (2, 3)
    }
    assert all(setting == {"a": number} for _, number, _, setting in tasks)
    assert study.next_task() is None and study.remaining() == 6 + 3
    # a = 1 was lucky at seed 1; a = 4 fails at seed 2 and is out, whatever its other scores.
    later = {1: [0.10, 0.10], 2: [0.24, 0.26], 4: [None, 0.90]}
    for a, (second, third) in later.items():
        _finished(study, "finalist", {"a": a}, 2, second, a)
        if a != 4:
            assert study.chosen() == (None, None)
        _finished(study, "finalist", {"a": a}, 3, third, a)
    assert study.chosen() == (2, {"a": 2})
    assert study.remaining() == 3
    assert study.next_task() == ("tuned", None, 1, {"a": 2})
    _finished(study, "tuned", {"a": 2}, 1, None)  # a failure is recorded once, not retried
    assert study.next_task()[:3] == ("tuned", None, 2) and study.remaining() == 2
    one = Study(
        "D", "M", path, trials=5, seeds=[1, 2, 3], defaults=False, config=config, finalists=1
    )
    for a, score in enumerate(scores):
        _finished(one, "trial", {"a": a}, 1, score, a)
    assert one.chosen() == (1, {"a": 1}) and one.next_task()[0] == "tuned"


def test_defaults_that_win_are_not_trained_twice(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [0,1,2]\n")
    config = {"valid_metric_bigger": True, "a": 0}
    study = Study("D", "M", path, trials=3, seeds=[1, 2], defaults=True, config=config)
    for a, score in enumerate([0.3, 0.1, 0.2]):
        _finished(study, "trial", {"a": a}, 1, score, a)
    for a, score in [(0, 0.3), (1, 0.1), (2, 0.1)]:
        _finished(study, "finalist", {"a": a}, 2, score, a)
    assert study.chosen() == (0, {"a": 0}) and study.remaining() == 2
    assert [study.next_task() for _ in range(3)] == [
        ("default", None, 1, {}),
        ("default", None, 2, {}),
        None,
    ]
    _finished(study, "default", {}, 1, 0.3)
    _finished(study, "default", {}, 2, 0.25)
    assert study.runs("tuned") == study.runs("default") and study.remaining() == 0
    lines = report({("D", "M"): study}, ["D"], ["M"], [1, 2], ["ndcg@10"], "M", {"D": "x"}, "", [])
    gain = next(line for line in lines if line.startswith("| M |")).split(" | ")[-2]
    assert gain == "none: the defaults were chosen"


def _margin_study(tmp_path, lucky_share):
    """A tiny search, defaults outside its space, with validation ranks on 200 users: the
    defaults rank every user's target 5th; the chosen setting ranks ``lucky_share`` of them first
    at both seeds instead (the rest as the defaults), and the other trial does worse."""
    path = tmp_path / "M.hyper"
    path.write_text("a choice [1,2]\n")
    config = {"valid_metric_bigger": True, "valid_metric": "NDCG@10", "a": 0}
    study = Study("D", "M", path, trials=2, seeds=[1, 2], defaults=True, config=config, margin=2)
    users = list(range(200))
    default_ranks = [4] * 200
    lucky = [0 if user < lucky_share * 200 else 4 for user in users]
    worse = [9] * 200

    def finish(stage, setting, seed, ranks, number=""):
        score = metric_values(ranks, "ndcg@10").mean()
        _finished(study, stage, setting, seed, score, number)
        study.valid_ranks[stage, setting_text(setting), seed] = (users, ranks)

    finish("trial", {"a": 1}, 1, lucky, 0)
    finish("trial", {"a": 2}, 1, worse, 1)
    finish("finalist", {"a": 1}, 2, lucky, 0)
    finish("finalist", {"a": 2}, 2, worse, 1)
    assert study.chosen() == (0, {"a": 1})
    # The defaults run first: until they have, nothing tuned can start.
    assert [study.next_task() for _ in range(3)] == [
        ("default", None, 1, {}),
        ("default", None, 2, {}),
        None,
    ]
    assert study.keeps_defaults() is None
    finish("default", {}, 1, default_ranks)
    finish("default", {}, 2, default_ranks)
    return study


def test_a_lucky_trial_within_the_margin_does_not_replace_the_defaults(tmp_path):
    # One user of 200 ranked first instead of fifth: a gain of (1 - 1 / log2(6)) / 200 in mean
    # NDCG@10, whose paired standard error over the users is as large.
    study = _margin_study(tmp_path, lucky_share=1 / 200)
    mean, error, _ = study.validation_gain()
    assert mean == pytest.approx((1 - 1 / np.log2(6)) / 200)
    assert 0 < mean <= 2 * error
    assert study.keeps_defaults() is True and study.tuned_are_defaults()
    assert study.next_task() is None  # no tuned run: the defaults' runs are the tuned runs
    assert study.runs("tuned") == study.runs("default") and study.remaining() == 0
    lines = report({("D", "M"): study}, ["D"], ["M"], [1, 2], ["ndcg@10"], "M", {"D": "x"}, "", [])
    gain = next(line for line in lines if line.startswith("| M |")).split(" | ")[-2]
    assert gain.startswith("none: the defaults kept")
    assert gain.endswith(f"valid Δ {mean:+.4f} ± {error:.4f}")


def test_a_gain_beyond_the_margin_replaces_the_defaults(tmp_path):
    study = _margin_study(tmp_path, lucky_share=0.2)
    mean, error, _ = study.validation_gain()
    assert mean > 2 * error
    assert study.keeps_defaults() is False and not study.tuned_are_defaults()
    assert study.next_task() == ("tuned", None, 1, {"a": 1})


def test_the_table_compares_models_user_by_user_on_their_test_ranks(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [1]\n")
    config = {"valid_metric_bigger": True, "a": 0}  # the defaults lie outside the space
    users = [5, 6, 7, 8]
    ranks = {  # (model, stage) -> ranks at seeds 1 and 2
        ("R", "tuned"): [[0, 3, 20, 20], [1, 3, 20, 20]],
        ("R", "default"): [[0, 20, 20, 20], [0, 20, 20, 2]],
        ("M", "tuned"): [[0, 0, 1, 20], [0, 1, 1, 20]],
        ("M", "default"): [[2, 20, 0, 20], [20, 20, 0, 20]],
    }
    studies = {}
    for model in ("R", "M"):
        study = Study("D", model, path, trials=1, seeds=[1, 2], defaults=True, config=config)
        _finished(study, "trial", {"a": 1}, 1, 0.5, 0)
        for stage, setting in (("tuned", {"a": 1}), ("default", {})):
            for seed, seed_ranks in zip((1, 2), ranks[model, stage]):
                row = {"ndcg@10": str(metric_values(seed_ranks, "ndcg@10").mean())}
                row |= {"stage": stage, "trial": "", "setting": setting_text(setting)}
                study.add(row | {"seed": str(seed), "best_valid_score": "0.5", "error": ""})
                study.test_ranks[stage, setting_text(setting), seed] = (users, seed_ranks)
        studies["D", model] = study
    lines = report(studies, ["D"], ["R", "M"], [1, 2], ["ndcg@10"], "R", {"D": "x"}, None, None)
    cells = next(line for line in lines if line.startswith("| M |")).split(" | ")
    versus, defaults, gain = cells[-4], cells[-3], cells[-2]

    def delta(cell):
        mean, error = cell.split("(Δ ")[1].split(",")[0].split(" ± ")
        return float(mean), float(error)

    def expected(model, stage, reference, reference_stage):
        runs = [(users, r) for r in ranks[model, stage]]
        reference_runs = [(users, r) for r in ranks[reference, reference_stage]]
        mean, error, _ = paired_difference(runs, reference_runs, "ndcg@10")
        return pytest.approx((mean, error), abs=6e-5)

    assert delta(versus) == expected("M", "tuned", "R", "tuned")
    assert delta(defaults) == expected("M", "default", "R", "default")
    assert delta(gain) == expected("M", "tuned", "M", "default")
    # Each Δ is the difference of the two means; the relative figure beside it says the same.
    mean_tuned = {m: metric_values(ranks[m, "tuned"], "ndcg@10").mean() for m in ("R", "M")}
    assert delta(versus)[0] == pytest.approx(mean_tuned["M"] - mean_tuned["R"], abs=6e-5)
    assert versus.startswith(f"{mean_tuned['M'] / mean_tuned['R'] - 1:+.1%}")


def test_the_table_marks_a_difference_significant_after_holms_correction_and_not_noise(tmp_path):
    path = tmp_path / "M.hyper"
    path.write_text("a choice [1]\n")
    config = {"valid_metric_bigger": True, "a": 0}
    rng = np.random.default_rng(1)
    users = list(range(300))
    base = rng.integers(0, 30, 300)
    ranks = {
        "R": base,
        "Same": rng.permutation(base),  # the same scores, dealt to other users
        "Better": np.where(rng.random(300) < 0.4, 0, base),  # 40% of the users ranked first
    }
    studies = {}
    for model, model_ranks in ranks.items():
        study = Study("D", model, path, trials=1, seeds=[1], defaults=False, config=config)
        _finished(study, "trial", {"a": 1}, 1, 0.5, 0)
        value = metric_values(model_ranks, "ndcg@10").mean()
        row = {"ndcg@10": str(value), "stage": "tuned", "trial": "", "seed": "1"}
        study.add(row | {"setting": setting_text({"a": 1}), "best_valid_score": "0.5", "error": ""})
        study.test_ranks["tuned", setting_text({"a": 1}), 1] = (users, list(model_ranks))
        studies["D", model] = study
    lines = report(studies, ["D"], list(ranks), [1], ["ndcg@10"], "R", {"D": "x"}, None, None)
    versus = {
        model: next(line for line in lines if line.startswith(f"| {model} |")).split(" | ")[-4]
        for model in ("Same", "Better")
    }
    assert versus["Better"].endswith(" *)") and "perm" in versus["Better"]
    assert not versus["Same"].endswith(" *)")


def test_a_ranks_line_cut_by_a_hard_kill_is_skipped_and_the_next_record_kept(tmp_path, capsys):
    path = tmp_path / "b.ranks.jsonl"
    key = {"dataset": "D", "model": "M", "stage": "tuned", "setting": "{}"}
    append_ranks(path, key | {"seed": 1}, ([5, 6], [0, 3]))
    whole = path.read_text()
    path.write_text(whole + whole[: len(whole) // 2])  # a second record, cut mid-line
    append_ranks(path, key | {"seed": 2}, ([5, 6], [1, 2]))
    records = read_ranks(path)
    assert [(r["seed"], r["ranks"]) for r in records] == [(1, [0, 3]), (2, [1, 2])]
    assert "line 2: cut short" in capsys.readouterr().out


def test_a_sigterm_stops_the_trainings_in_flight_and_no_orphan_is_left():
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    with pytest.raises(SystemExit, match="stopped by signal"):
        with worker_pool(jobs=1, threads=1) as pool:
            running = pool.submit(time.sleep, 300)
            while not running.running():
                time.sleep(0.1)
            workers = multiprocessing.active_children()
            assert workers
            os.kill(os.getpid(), signal.SIGTERM)
            running.result()
    # Left to the pool's shutdown, the 300 s training would have been waited for.
    assert time.monotonic() - started < 150
    assert not any(worker.is_alive() for worker in workers)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_time_estimate_counts_a_resumed_run_by_the_epochs_trained_after_the_restart():
    assert share_trained_here({"resumed_epoch": None, "last_epoch": 17}) == 1.0
    assert share_trained_here({"resumed_epoch": 8, "last_epoch": 17}) == 10 / 18
    # Resumed after its last epoch (stopped while testing): still some work, never zero.
    assert share_trained_here({"resumed_epoch": 18, "last_epoch": 17}) == 1 / 18
    assert share_trained_here({"error": "ValueError: diverged", "resumed_epoch": 3}) == 1.0


def test_model_overrides_read_numbers_in_any_notation():
    assert parse_model("AlphaFuseSASRec:weight_decay=1e-6,cover=True,id_init=zeros") == (
        "AlphaFuseSASRec",
        {"weight_decay": 1e-6, "cover": True, "id_init": "zeros"},
    )


def test_tpe_after_its_random_start_favours_the_better_choice():
    space = {"a": ("choice", list(range(6)))}
    history = []
    for number in range(30):
        setting = suggest_tpe(space, history, number, n_startup=6)
        history.append((setting, abs(setting["a"] - 4)))
    late = [setting["a"] for setting, _ in history[6:]]
    assert late.count(4) > len(late) / 6 * 2


@pytest.mark.parametrize("model", sorted(plugin_models()))
def test_every_model_ships_a_space_over_keys_it_reads_that_holds_its_default(model):
    space = read_search_space(PROPERTIES_DIR / "hyper" / f"{model}.hyper")
    config = Config(model=model, dataset="ml-100k")
    assert {"learning_rate", "weight_decay"} <= set(space)
    assert {"hidden_dropout_prob", "dropout_prob"} & set(space)
    assert all(key in config for key in space), list(space)
    assert contains(space, {key: config[key] for key in space})


@pytest.fixture
def fixed_settings(slice_root, workdir):
    path = workdir / "fast.yaml"
    path.write_text(yaml.safe_dump({**FAST_CONFIG, "epochs": 2, "data_path": str(slice_root)}))
    return [str(path)]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_chosen_setting_is_the_best_mean_on_validation_and_no_search_run_is_tested(
    fixed_settings, workdir, capsys
):
    spaces = workdir / "spaces"
    spaces.mkdir()
    (spaces / "IDSASRec.hyper").write_text("learning_rate choice [0.0001,0.003,0.01]\n")
    search = partial(
        benchmark,
        [SLICE],
        ["IDSASRec"],
        trials=5,
        seeds=[7, 8],
        config_files=fixed_settings,
        threads=1,
        out=workdir / "bench",
        spaces_dir=spaces,
        defaults=True,
        metrics=["ndcg@10"],
        finalists=2,
        margin=None,  # the best finalist is tested whatever its margin over the defaults
    )
    studies = search(jobs=2)
    rows = _rows(workdir / "bench.csv")
    # Every run, the search's included, keeps its users' validation ranks at its best epoch.
    records = read_ranks(workdir / "bench.ranks.jsonl")
    validated = {(r["stage"], r["setting"], r["seed"]) for r in records if r["split"] == "valid"}
    assert validated == {(r["stage"], r["setting"], int(r["seed"])) for r in rows}
    trials = [r for r in rows if r["stage"] == "trial"]
    # The grid (3 settings) is smaller than the budget: each setting once.
    assert sorted(json.loads(r["setting"])["learning_rate"] for r in trials) == [
        0.0001,
        0.003,
        0.01,
    ]
    finalists = {r["setting"]: r for r in rows if r["stage"] == "finalist"}
    assert all(r["ndcg@10"] == "" and r["test_seconds"] == "" for r in trials)
    assert all(r["ndcg@10"] == "" and r["seed"] == "8" for r in finalists.values())
    # The 2 best trials are the finalists; the best mean validation over seeds 7 and 8 wins.
    top = sorted(trials, key=lambda r: -float(r["best_valid_score"]))[:2]
    assert set(finalists) == {r["setting"] for r in top}
    best = max(
        top,
        key=lambda r: (
            float(r["best_valid_score"]) + float(finalists[r["setting"]]["best_valid_score"])
        ),
    )
    number, setting = studies[SLICE, "IDSASRec"].chosen()
    assert setting == json.loads(best["setting"]) and number == int(best["trial"])
    tuned = {int(r["seed"]): r for r in rows if r["stage"] == "tuned"}
    assert set(tuned) == {7, 8}
    assert all(json.loads(r["setting"]) == setting and r["ndcg@10"] != "" for r in tuned.values())
    # The search ran at the first seed, the finalists at the second: the tuned runs repeat them.
    assert tuned[7]["best_valid_score"] == best["best_valid_score"]
    assert tuned[8]["best_valid_score"] == finalists[best["setting"]]["best_valid_score"]
    defaults = [r for r in rows if r["stage"] == "default"]
    assert sorted(int(r["seed"]) for r in defaults) == [7, 8]
    assert all(r["setting"] == "{}" for r in defaults)
    table = (workdir / "bench.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| IDSASRec |"))
    assert row.startswith("| IDSASRec | 3/3 grid + 2 finalists |") and '{"learning_rate": ' in row
    assert "%" in row.split("|")[-3]  # the gain from tuning over the defaults
    tuned_valid = sum(float(r["best_valid_score"]) for r in tuned.values()) / 2
    assert row.split("|")[4].strip().startswith(f"{tuned_valid:.4f} / ")
    # Each tested run left its test users' ranks, which give its metrics back; the table
    # compares the tuned runs with the defaults user by user.
    ranks_file = (workdir / "bench.ranks.jsonl").read_text().splitlines()
    tested = [r for r in map(json.loads, ranks_file) if r["split"] == "test"]
    records = {(r["stage"], r["seed"]): r for r in tested}
    assert sorted(records) == sorted(
        (r["stage"], int(r["seed"])) for r in [*tuned.values(), *defaults]
    )
    for csv_row in [*tuned.values(), *defaults]:
        record = records[csv_row["stage"], int(csv_row["seed"])]
        assert len(set(record["users"])) == len(record["users"]) > 0
        ndcg = metric_values(record["ranks"], "ndcg@10").mean()
        assert ndcg == pytest.approx(float(csv_row["ndcg@10"]), abs=1e-4)
    delta = float(row.split("|")[-3].split("Δ")[1].split("±")[0])
    mean_ndcg = {
        stage: sum(float(r["ndcg@10"]) for r in runs) / 2
        for stage, runs in (("tuned", tuned.values()), ("default", defaults))
    }
    assert delta == pytest.approx(mean_ndcg["tuned"] - mean_ndcg["default"], abs=2e-4)

    # No training's state is left once the benchmark is done.
    assert all(r["resumed_epoch"] == "" for r in rows)
    assert not (workdir / "bench.runs").exists()

    # Resume: a run lost from the CSV is the only one trained again. Killed during its last
    # epoch, it left its state after the first one, from which it goes on.
    lost = rows[-1]
    with open(workdir / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:-1])
    search(jobs=1, table_only=True)
    assert len(_rows(workdir / "bench.csv")) == len(rows) - 1
    in_flight = run_checkpoint_dir(
        workdir / "bench.runs",
        SLICE,
        "IDSASRec",
        lost["stage"],
        int(lost["seed"]),
        read_setting(lost["setting"]),
    )
    in_flight.mkdir(parents=True)
    with worker_pool(1, 1) as pool:
        attempt = pool.submit(
            train_and_test,
            SLICE,
            "IDSASRec",
            int(lost["seed"]),
            fixed_settings,
            read_setting(lost["setting"]),
            test=True,
            checkpoint_dir=str(in_flight),
        )
        attempt.result()
    assert len(list(in_flight.glob("*-last.pth"))) == 1
    capsys.readouterr()
    search(jobs=1)
    assert "resumed at epoch 1 (" in capsys.readouterr().out
    again = _rows(workdir / "bench.csv")
    assert len(again) == len(rows)
    assert (again[-1]["stage"], again[-1]["seed"]) == (lost["stage"], lost["seed"])
    assert again[-1]["resumed_epoch"] == "1"
    for field in ("best_valid_score", "best_epoch", "last_epoch", "ndcg@10"):
        assert again[-1][field] == lost[field], field
    assert not (workdir / "bench.runs").exists()


def _refused(fixed_settings, workdir, models, message, **options):
    """The benchmark stops with ``message`` before any training."""
    with pytest.raises(AlphaFuseError, match=message):
        benchmark(
            [SLICE],
            models,
            trials=2,
            seeds=[7],
            config_files=fixed_settings,
            out=workdir / "bench",
            **options,
        )


def test_a_model_without_a_space_is_refused_before_any_training(fixed_settings, workdir):
    message = r"no search space for SASRec: write SASRec\.hyper"
    _refused(fixed_settings, workdir, ["IDSASRec", "SASRec"], message)
    assert not (workdir / "bench.csv").exists()


def test_a_search_key_the_model_does_not_read_is_refused(fixed_settings, workdir):
    spaces = workdir / "spaces"
    spaces.mkdir()
    (spaces / "IDSASRec.hyper").write_text("learnin_rate choice [0.001,0.003]\n")
    message = "searches learnin_rate, which IDSASRec does not read"
    _refused(fixed_settings, workdir, ["IDSASRec"], message, spaces_dir=spaces)
    assert not (workdir / "bench.csv").exists()


def test_a_csv_of_another_table_is_refused_as_out(fixed_settings, workdir):
    (workdir / "bench.csv").write_text("dataset,model,seed\nml-slice,IDSASRec,7\n")
    _refused(fixed_settings, workdir, ["IDSASRec"], "holds no benchmark")
    assert (workdir / "bench.csv").read_text() == "dataset,model,seed\nml-slice,IDSASRec,7\n"
