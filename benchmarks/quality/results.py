"""The results table: models x datasets x seeds, test metrics as markdown, CSV and a plot.

    python benchmarks/quality/results.py --datasets office office-cold \
        --models SASRec AlphaFuseSASRec LLMInit "AlphaFuseSASRec:null_dim=16" \
        --seeds 2020 2021 2022 --config_files benchmarks/cpu.yaml --jobs 2 \
        --out benchmarks/results/office

A model is ``Name`` or ``Name:key=value,key=value`` (values read as YAML) for ablations. The
protocol is the dataset's: RecBole's leave-one-out for a plain dataset, the user-disjoint
cold-start split for a ``NAME-cold`` dataset written by ``python -m recbole_alphafuse split``.
Each run trains with early stopping on the validation metric and reports the test metrics of
the best epoch (with ``group_metrics: True`` in the config, the tail/head groups too).

Writes ``OUT.csv`` (one row per run, appended as runs finish: an interrupted table resumes where
it stopped, the runs in flight from their last epoch, kept in ``OUT.runs/``), ``OUT.ranks.jsonl``
(each run's test users and target ranks, for the paired comparison with the first model), ``OUT.md`` (mean
and standard deviation over seeds) and ``OUT.png`` (the first metric, mean and standard
deviation). ``python -m recbole_alphafuse benchmark`` tunes the models on validation first; this
table takes them at their defaults. ``--jobs N`` runs N trainings at once, each on cores / N
threads.

Results page: the quality studies of benchmarks/results/: defaults-sasrec.md, ablation.md,
reference-encoder.md, diffusion.md, train-positions.md (quality), parity.md (the plugin's runs) and
catalogue-scale.md (Yelp quality).
"""

import argparse
import os
import shutil
import sys
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import write_report
from recbole_alphafuse.benchmark.pools import worker_pool
from recbole_alphafuse.benchmark.report import (
    machine,
    mean_and_spread,
    paired_cell,
    plot_bars,
    protocol,
)
from recbole_alphafuse.benchmark.storage import (
    RUN_FIELDS,
    append_ranks,
    append_run,
    read_ranks,
    read_runs,
    run_checkpoint_dir,
    runs_folder,
)
from recbole_alphafuse.benchmark.training import groups_of_test_examples, train_and_test
from recbole_alphafuse.evaluation import (
    GROUPS,
    SINGLE_TARGET_METRICS,
    holm_family,
    paired_test,
    users_to_detect,
)


def summarize(runs, datasets, models, metrics):
    """{(dataset, model): {metric: (mean, std, n)}} over seeds."""
    summary = {}
    for dataset in datasets:
        for model in models:
            chosen = [r for r in runs if r["dataset"] == dataset and r["model"] == model]
            values = {metric: mean_and_spread(chosen, metric) for metric in metrics}
            if chosen:
                summary[dataset, model] = {m: v for m, v in values.items() if v is not None}
    return summary


def within_group(run, groups, group):
    """A run's (users, ranks) restricted to the test examples of ``group`` (``tail_item``,
    ``head_item``, ``tail_user``, ``head_user``); None unless the run ranked exactly the
    examples ``groups`` describes (:func:`~recbole_alphafuse.benchmark.training.groups_of_test_examples`)."""
    users, ranks = (np.asarray(part) for part in run)
    if not np.array_equal(users, groups["users"]):
        return None
    kind = group.split("_")[1]
    members = groups[f"tail_{kind}"] if group.startswith("tail") else ~groups[f"tail_{kind}"]
    return users[members], ranks[members]


def compare_to_first(test_ranks, datasets, models, seeds, metric, groups=None):
    """Each model against the first, user by user over the seeds both ran
    (:func:`~recbole_alphafuse.evaluation.paired_test`), with Holm's correction over each
    dataset's comparisons: {(dataset, model): (test, Holm p, significant)}. A ``metric`` of a
    group (``tail_item/ndcg@10``) compares within the group, ``groups`` giving each dataset's
    (:func:`within_group`)."""
    group, _, name = metric.rpartition("/")
    comparisons = {}
    for dataset in datasets:
        family = {}
        for model in models[1:]:
            pairs = [
                (test_ranks.get((dataset, model, seed)), test_ranks.get((dataset, models[0], seed)))
                for seed in seeds
            ]
            if group:
                pairs = [
                    tuple(within_group(run, groups[dataset], group) for run in pair)
                    for pair in pairs
                    if None not in pair
                ]
            pairs = [pair for pair in pairs if None not in pair]
            if pairs:
                family[model] = paired_test([p[0] for p in pairs], [p[1] for p in pairs], name)
        for model, comparison in holm_family(family).items():
            comparisons[dataset, model] = comparison
    return comparisons


def paired_tables(comparisons, datasets, models, metrics):
    """Markdown: per dataset, each model's paired difference from the first on each metric
    (``comparisons``: {metric: :func:`compare_to_first`}), with the test users a difference of
    that size would need to be found 80% of the time at 0.05
    (:func:`~recbole_alphafuse.evaluation.users_to_detect`)."""
    lines = []
    for dataset in datasets:
        lines += [
            "",
            f"#### {dataset}: paired Δ against {models[0]}, user by user (Holm over each column)",
            "",
            "Users to find it: the test users on which a difference of that size and spread is "
            "significant at 0.05 in 80% of samples (statsmodels' power of the paired t-test).",
            "",
            "| model | " + " | ".join(metrics) + " |",
            "|---|" + "---|" * len(metrics),
        ]
        for model in models[1:]:
            cells = []
            for metric in metrics:
                comparison = comparisons[metric].get((dataset, model))
                cell = paired_cell(comparison).strip(" ()") or "-"
                users = comparison and users_to_detect(comparison[0])
                if users:
                    cell += f"; {users:,} users to find it"
                cells.append(cell)
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def markdown(summary, datasets, models, metrics, protocols, command, comparisons=None):
    lines = [
        f"Command: `{command}`",
        f"Machine: {machine()}.",
        (
            "Test metrics at the best validation epoch (best_valid_score: that epoch's validation "
            "metric): mean ± standard deviation over seeds (n runs); the last column is the "
            f"first metric relative to {models[0]}, with Δ, the paired difference user by user "
            "(each user's value averaged over the seeds both ran) ± its standard error, and "
            "two-sided p-values (scipy's paired t-test and permutation test; Holm: the latter "
            "after Holm's correction over the dataset's comparisons; * significant at 0.05)."
        ),
    ]
    for dataset in datasets:
        lines += [
            "",
            f"### {dataset} ({protocols[dataset]})",
            "",
            "| model | n | " + " | ".join(metrics) + f" | {metrics[0]} vs {models[0]} |",
            "|---|---|" + "---|" * (len(metrics) + 1),
        ]
        reference = summary.get((dataset, models[0]), {}).get(metrics[0])
        for model in models:
            row = summary.get((dataset, model))
            if not row:
                continue
            cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" if m in row else "-" for m in metrics]
            n = max(value[2] for value in row.values())
            ratio = "-"
            if reference and reference[0] > 0 and metrics[0] in row:
                ratio = f"{row[metrics[0]][0] / reference[0] - 1:+.1%}"
            ratio += paired_cell((comparisons or {}).get((dataset, model)))
            lines.append(f"| {model} | {n} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--config_files", nargs="*", default=[])
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=["ndcg@10", "hit@10", "mrr@10", "tail_item/ndcg@10", "head_item/ndcg@10"],
    )
    parser.add_argument(
        "--paired",
        nargs="*",
        default=[],
        help="more metrics to compare with the first model user by user, each in its own "
        "table column; a group's (tail_item/ndcg@10) within the group's test examples",
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="per run (default cores / jobs)")
    parser.add_argument("--out", required=True, help="path prefix of the .csv, .md and .png")
    parser.add_argument(
        "--runs_from",
        nargs="*",
        default=[],
        help="other tables' --out prefixes: their recorded runs and ranks join this table "
        "(read only; a model and seed found there is not trained again)",
    )
    args = parser.parse_args()
    for metric in args.paired:
        group, _, name = metric.rpartition("/")
        if (group and group not in GROUPS) or name.partition("@")[0] not in SINGLE_TARGET_METRICS:
            parser.error(
                f"--paired {metric}: give a metric@k of {', '.join(SINGLE_TARGET_METRICS)}, "
                f"alone or after a group ({', '.join(GROUPS)}), e.g. tail_item/ndcg@10."
            )
    for prefix in args.runs_from:
        if not Path(prefix).with_suffix(".csv").is_file():
            parser.error(
                f"--runs_from {prefix}: no {Path(prefix).with_suffix('.csv')} (give a --out prefix)"
            )
    command = "python " + " ".join(sys.argv)
    sys.argv = sys.argv[:1]  # RecBole's Config would read the flags above as config keys
    config_files = args.config_files or None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, ranks_path = out.with_suffix(".csv"), out.with_suffix(".ranks.jsonl")

    protocols = {dataset: protocol(dataset, config_files) for dataset in args.datasets}
    runs = read_runs(csv_path)
    done = {(r["dataset"], r["model"], int(r["seed"])) for r in runs}
    ranks_paths = [ranks_path]
    for prefix in map(Path, args.runs_from):
        for run in read_runs(prefix.with_suffix(".csv")):
            if (key := (run["dataset"], run["model"], int(run["seed"]))) not in done:
                done.add(key)
                runs.append(run)
        ranks_paths.append(prefix.with_suffix(".ranks.jsonl"))
    # Seed by seed, so that a cut-short table still compares the models on the same seeds.
    todo = [
        (dataset, model, seed)
        for dataset in args.datasets
        for seed in args.seeds
        for model in args.models
        if (dataset, model, seed) not in done
    ]
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    also = " and the --runs_from tables" if args.runs_from else ""
    print(
        f"{len(todo)} runs to do ({len(done)} already in {csv_path}{also}), {args.jobs} at a time"
    )
    runs_dir = runs_folder(csv_path)
    with worker_pool(args.jobs, threads) as pool:
        futures = {}
        for dataset, model, seed in todo:
            folder = run_checkpoint_dir(runs_dir, dataset, model, "default", seed, {})
            future = pool.submit(
                train_and_test, dataset, model, seed, config_files, checkpoint_dir=str(folder)
            )
            futures[future] = folder
        for future in as_completed(futures):
            row, ranks = future.result()
            if ranks["test"] is not None:
                # Before the CSV row: a run whose row is written always has its ranks.
                append_ranks(
                    ranks_path, {**row, "stage": "default", "setting": "{}"}, ranks["test"]
                )
            append_run(csv_path, row, RUN_FIELDS + [k for k in row if k not in RUN_FIELDS])
            shutil.rmtree(futures[future], ignore_errors=True)
            runs.append({key: str(value) for key, value in row.items()})
            print(
                f"{row['dataset']} {row['model']} seed={row['seed']}: "
                f"ndcg@10={row.get('ndcg@10')} ({row['seconds']}s)",
                flush=True,
            )
    shutil.rmtree(runs_dir, ignore_errors=True)

    chosen = [r for r in runs if int(r["seed"]) in args.seeds]
    summary = summarize(chosen, args.datasets, args.models, args.metrics)
    test_ranks = {
        (r["dataset"], r["model"], int(r["seed"])): (r["users"], r["ranks"])
        for path in reversed(ranks_paths)  # this table's own ranks last: they win
        for r in read_ranks(path)
        if r.get("split", "test") == "test"
    }
    comparisons = compare_to_first(
        test_ranks, args.datasets, args.models, args.seeds, args.metrics[0]
    )
    lines = markdown(
        summary, args.datasets, args.models, args.metrics, protocols, command, comparisons
    )
    if args.paired:
        groups = None
        if any("/" in metric for metric in args.paired):
            groups = {
                dataset: groups_of_test_examples(dataset, args.models[0], config_files)
                for dataset in args.datasets
            }
        paired = {
            metric: compare_to_first(
                test_ranks, args.datasets, args.models, args.seeds, metric, groups
            )
            for metric in args.paired
        }
        lines += paired_tables(paired, args.datasets, args.models, args.paired)
    write_report(out.with_suffix(".md"), lines)
    first = args.metrics[0]
    values = {key: row[first] for key, row in summary.items() if first in row}
    plot_bars(args.datasets, args.models, {first: values}, first, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
