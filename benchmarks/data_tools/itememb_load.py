"""Time and peak memory of loading a large ``.itememb`` file for a plugin model, stage by stage:
RecBole's own float_seq parsing against the plugin's parsed-matrix cache (first and later loads).

    python benchmarks/data_tools/itememb_load.py --sizes 10000x384 100000x1536 \
        --out benchmarks/results/itememb-load.md [--data_dir /tmp/itememb-load]

For each N x d a synthetic dataset is generated once under ``--data_dir`` (kept for later runs):
20,000 users with 10 interactions each over N items (every item used at least once, so none is a
ghost), and N unit-norm float32 vectors of d numbers written with the plugin's ``write_itememb``.
Then, each in a fresh Python subprocess (peak memory = that process's ``ru_maxrss``):

- ``recbole``: ``itememb_cache: False``, the path without the cache: the plugin's row checks, then
  RecBole parses every float_seq cell in Python;
- ``cold``: ``itememb_cache: True`` and no cache file: hash, parse once, check, write the cache;
- ``warm``: ``itememb_cache: True`` and the cache written by ``cold``: hash and read it.

Each builds AlphaFuseSASRec (``--hidden_size``, default 64) the way ``run`` does: the plugin's
``create_dataset``, RecBole's ``data_preparation`` and the model. Indented stages are part of the
stage above them; "peak RSS after" is ``ru_maxrss`` when the stage ended, so it shows which stage
set the peak.

Results page: benchmarks/results/itememb-load.md.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from benchmarks.report import run_worker, write_report
from recbole_alphafuse.benchmark.report import machine

DATASET = "itememb-bench"
USERS = 20_000
INTERACTIONS_PER_USER = 10
MODES = ("recbole", "cold", "warm")
GENERATION_CHUNK = 4096

# (label, nesting level) in the order they are reported; labels are filled by `worker`.
STAGES = [
    ("prepare_dataset (plugin file checks)", 0),
    ("check_itememb_rows", 1),
    ("dataset construction (RecBole Dataset)", 0),
    (".itememb loading (_load_feat)", 1),
    ("hash of the file", 2),
    ("cache read", 2),
    ("parse + check (cache miss)", 2),
    ("cache write", 2),
    ("preload matrix (_preload_weight_matrix)", 1),
    ("check_no_extra_items", 0),
    ("data_preparation (split, dataloaders)", 0),
    ("model construction", 0),
    ("language_embeddings", 1),
    ("decomposition", 1),
]


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def parse_size(text):
    n, _, dim = text.lower().partition("x")
    return int(n), int(dim)


def generate(folder, n_items, dim, seed):
    """Write the synthetic .inter and .itememb files into ``folder`` unless they are there."""
    from recbole_alphafuse.data.itememb import itememb_path, write_itememb

    inter, itememb = folder / f"{DATASET}.inter", itememb_path(folder, DATASET)
    if inter.is_file() and itememb.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = USERS * INTERACTIONS_PER_USER
    items = np.concatenate([np.arange(n_items), rng.integers(0, n_items, total - n_items)])
    items = rng.permutation(items).reshape(USERS, INTERACTIONS_PER_USER)
    with open(inter, "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, row in enumerate(items):
            f.writelines(f"u{user}\ti{item}\t{step}\n" for step, item in enumerate(row))
    vectors = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, GENERATION_CHUNK):
        rows = rng.standard_normal((min(GENERATION_CHUNK, n_items - start), dim), dtype=np.float32)
        vectors[start : start + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    start = time.perf_counter()
    write_itememb(itememb, [f"i{item}" for item in range(n_items)], vectors)
    print(f"wrote {itememb} in {time.perf_counter() - start:.0f}s", flush=True)


class StageTimer:
    """Replaces functions by wrappers that add their wall time and the peak RSS after them."""

    def __init__(self):
        self.seconds, self.peak_after = {}, {}

    def wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
                self.peak_after[label] = peak_rss_mib()

        setattr(owner, name, timed)

    def run(self, label, function, *args):
        start = time.perf_counter()
        result = function(*args)
        self.seconds[label] = time.perf_counter() - start
        self.peak_after[label] = peak_rss_mib()
        return result


def worker(args):
    """Load the dataset and build the model once in this (fresh) process, with ``args.worker``'s
    cache setting; prints the stage times as JSON."""
    from recbole.data import create_dataset as recbole_create_dataset
    from recbole.data import data_preparation
    from recbole.data.dataset import Dataset

    from recbole_alphafuse import quick_start
    from recbole_alphafuse.config import Config
    from recbole_alphafuse.data import itememb_cache, prepare
    from recbole_alphafuse.model.item_embedding import alphafuse

    timer = StageTimer()
    names = [label for label, _ in STAGES]
    for owner, name, label in [
        (prepare, "check_itememb_rows", names[1]),
        (Dataset, "_load_additional_feat", names[3]),
        (itememb_cache, "file_digest", names[4]),
        (itememb_cache, "_read_cache", names[5]),
        (itememb_cache, "read_itememb_rows", names[6]),
        (itememb_cache, "_write_cache", names[7]),
        (Dataset, "_preload_weight_matrix", names[8]),
        (alphafuse, "language_embeddings", names[12]),
        (alphafuse, "decompose_language_space", names[13]),
    ]:
        timer.wrap(owner, name, label)

    with tempfile.TemporaryDirectory() as checkpoints:
        config = Config(
            model="AlphaFuseSASRec",
            dataset=DATASET,
            config_dict={
                "data_path": args.worker_root,
                "itememb_cache": args.worker != "recbole",
                "hidden_size": args.hidden_size,
                "MAX_ITEM_LIST_LENGTH": 10,
                "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
                "checkpoint_dir": checkpoints,
                "show_progress": False,
                "use_gpu": False,
            },
        )
        start = time.perf_counter()
        timer.run(names[0], prepare.prepare_dataset, config)
        if quick_start.uses_itememb_cache(config):
            dataset = timer.run(names[2], itememb_cache.create_cached_dataset, config)
        else:
            dataset = timer.run(names[2], recbole_create_dataset, config)
        timer.run(names[9], quick_start.check_no_extra_items, dataset)
        train_data, _, _ = timer.run(names[10], data_preparation, config, dataset)
        timer.run(names[11], config.model_class, config, train_data._dataset)
        total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": timer.seconds,
                "peak_after": timer.peak_after,
                "total": total,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def report_table(size, stats):
    lines = [
        f"**{size}**",
        "",
        "| stage | " + " | ".join(f"{m} (s) | {m} peak RSS after (MiB)" for m in MODES) + " |",
        "|---|" + "---|---|" * len(MODES),
    ]
    for label, level in STAGES:
        cells = []
        for mode in MODES:
            seconds = stats[mode]["seconds"].get(label)
            peak = stats[mode]["peak_after"].get(label)
            cells += ["-", "-"] if seconds is None else [f"{seconds:.2f}", f"{peak:.0f}"]
        lines.append(f"| {'&nbsp;' * 4 * level}{label} | " + " | ".join(cells) + " |")
    lines.append(
        "| **total** | "
        + " | ".join(
            f"**{stats[m]['total']:.2f}** | **{stats[m]['peak_rss_mib']:.0f}**" for m in MODES
        )
        + " |"
    )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["10000x384"], help="N x d, e.g. 10000x384")
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=str(Path(tempfile.gettempdir()) / "itememb-load"))
    parser.add_argument("--out", help="markdown report (required unless --worker)")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--worker_root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.argv = sys.argv[:1]  # RecBole's Config parses sys.argv
        return worker(args)
    if not args.out:
        parser.error("--out is required")

    from recbole_alphafuse.data.itememb import itememb_path
    from recbole_alphafuse.data.itememb_cache import cache_files

    lines = [
        (
            f"Loading a synthetic dataset ({USERS:,} users x {INTERACTIONS_PER_USER} "
            f"interactions over N items, N x d unit-norm vectors in `{DATASET}.itememb`) for "
            f"AlphaFuseSASRec (hidden_size {args.hidden_size}) as `run` does, on {machine()} "
            f"(load average {os.getloadavg()[0]:.1f} at the start: other jobs share the cores). "
            "One fresh subprocess per column: `recbole` = `itememb_cache: False` (the plugin's "
            "row checks, then RecBole parses the float_seq cells in Python), `cold` = first load "
            "with the cache (hash, parse once, check, write), `warm` = a later load (hash, read "
            "the cache). Indented stages are part of the stage above; 'peak RSS after' = "
            "ru_maxrss when the stage ended."
        ),
        "",
    ]
    for size in args.sizes:
        n_items, dim = parse_size(size)
        root = Path(args.data_dir) / size
        generate(root / DATASET, n_items, dim, args.seed)
        itememb = itememb_path(root / DATASET, DATASET)
        for stale in cache_files(itememb):
            stale.unlink()
        stats = {}
        for mode in MODES:
            stats[mode] = run_worker(
                __file__,
                [f"--worker={mode}", f"--worker_root={root}", f"--hidden_size={args.hidden_size}"],
                f"{mode} run in {root}",
            )
            print(f"{size} {mode}: total {stats[mode]['total']:.2f}s", flush=True)
        (cache,) = cache_files(itememb)
        recbole_total = stats["recbole"]["total"]
        lines += report_table(size, stats)
        lines += [
            "",
            (
                f"File {itememb.stat().st_size / 2**20:,.0f} MiB, cache "
                f"{cache.stat().st_size / 2**20:,.0f} MiB. Speed-up of the whole load over "
                f"`recbole`: cold {recbole_total / stats['cold']['total']:.1f}x, warm "
                f"{recbole_total / stats['warm']['total']:.1f}x."
            ),
            "",
        ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
