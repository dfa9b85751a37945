"""A fair benchmark in one command: every model tuned on validation with the same budget, then
tested over seeds.

    python -m recbole_alphafuse benchmark --datasets Office-cold ml-100k-cold \
        --models IDSASRec AlphaFuseSASRec LLMInitSASRec --trials 12 --seeds 2020 2021 2022 \
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
   do not repeat. ``--finalists 1`` chooses the search's best trial alone. The chosen setting
   then replaces the model's defaults only where it beats them on validation by more than
   ``--margin`` (2) standard errors of the paired difference over the validation users, each
   user's value averaged over the seeds; else the defaults are kept. So the defaults are
   trained at every seed before any tuned run.
3. **Test.** The chosen setting is trained at every seed and tested at its best validation
   epoch; with ``--defaults`` the model's defaults are too, which gives the gain from tuning.

Writes ``OUT.csv`` (every trial and every run, appended as they finish: an interrupted benchmark
resumes where it stopped), ``OUT.ranks.jsonl`` (each run's validation users at its best epoch
and each tested run's test users, with the rank it gave each one's target), ``OUT.md`` (the table) and, where matplotlib is installed, ``OUT.png``.
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
selection and files either way. ``benchmarks/quality/results.py`` (models at their defaults, no search)
shares the runs, the CSV and the plot with it.
"""

import argparse
import sys

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.benchmark.pools import TOOLS
from recbole_alphafuse.benchmark.run import benchmark


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
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="test the defaults too (always, with a --margin)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=2.0,
        help="the chosen setting replaces the defaults only where its validation beats theirs by "
        "more than this many paired standard errors over the validation users; a negative "
        "value: by any amount, with no defaults runs unless --defaults",
    )
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
            margin=args.margin if args.margin >= 0 else None,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
