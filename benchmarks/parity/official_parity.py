"""The AlphaFuse authors' own SASRec training on a split exported by the plugin, for parity.

    python -m recbole_alphafuse export alphafuse --dataset Office-cold --output /tmp/office-cold-af
    python benchmarks/parity/official_parity.py --official PATH/TO/AlphaFuse --data /tmp/office-cold-af \
        --models AlphaFuse SASRec --seeds 2020 2021 2022 --jobs 2 \
        --out benchmarks/results/parity-office-cold-official

``--official`` is a checkout of the authors' code (github Hugo-Chinn/AlphaFuse); it is run as it
is, one process per (model, seed) on one CPU thread, with the flags of their README's cold-start
SASRec runs (``--hidden_dim 128 --null_dim 64 --lr 0.001 --loss_type infoNCE --neg_ratio 64
--ID_embs_init_type normal``) and their early stopping (validation NDCG@20, patience 50, up to
500 epochs). Their script reads ``../ours_DiT/data/NAME`` and writes ``./saved/``: each run gets
a working folder laid out so. Writes ``OUT.csv`` (one row per run, appended as runs finish),
``OUT.md`` (mean and standard deviation over seeds) and each run's log in ``OUT-logs/``.

Results page: benchmarks/results/parity.md.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import write_report
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.benchmark.storage import append_run, read_runs

README_FLAGS = [
    "--hidden_dim", "128", "--null_dim", "64", "--lr", "0.001", "--loss_type", "infoNCE",
    "--neg_ratio", "64", "--ID_embs_init_type", "normal", "--cuda", "0",
]  # fmt: skip
METRICS = ["ndcg@10", "ndcg@20", "hit@10", "hit@20", "mrr@10", "mrr@20"]
FIELDS = ["model", "seed", "seconds", "epochs", "best_epoch", "best_valid_ndcg@20", *METRICS]


def parse_log(text):
    """Test metrics after 'TEST RESULTS', the best validation epoch and the epochs run."""
    test = text.split("TEST RESULTS", 1)[1]
    values = {}
    for kind, key in (("HR", "hit"), ("NDCG", "ndcg"), ("MRR", "mrr")):
        match = re.search(rf"{kind}@5\s+{kind}@10\s+{kind}@20\s+{kind}@50\s*\n([^\n]+)", test)
        _, at10, at20, _ = (float(v) for v in match.group(1).split())
        values[f"{key}@10"], values[f"{key}@20"] = at10, at20
    best = re.findall(r"best NDCG@20 is updated to\s+([0-9.]+) at epoch (\d+)", text)
    epochs = re.findall(r"loss in epoch (\d+)", text)
    values["best_valid_ndcg@20"] = float(best[-1][0])
    values["best_epoch"] = int(best[-1][1])
    values["epochs"] = int(epochs[-1]) + 1
    return values


def train_official(official, data, model, seed, log_path):
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        data_dir = work / "ours_DiT" / "data"
        data_dir.mkdir(parents=True)
        (data_dir / data.name).symlink_to(data.resolve())
        run_dir = work / "run"
        (run_dir / "saved").mkdir(parents=True)
        command = [
            sys.executable, "-u", str(official / "train.py"), "--data", data.name,
            "--random_seed", str(seed), "--model_type", model,
            "--language_model_type", embedding_name(data), *README_FLAGS,
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        start = time.time()
        with open(log_path, "w") as log:
            done = subprocess.run(
                command, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
            )
        seconds = time.time() - start
    text = Path(log_path).read_text()
    if done.returncode != 0 or "TEST RESULTS" not in text:
        raise RuntimeError(f"{model} seed {seed} failed: see {log_path}")
    return {"model": model, "seed": seed, "seconds": round(seconds, 1), **parse_log(text)}


def embedding_name(data):
    (vectors,) = data.glob("*_emb.pickle")
    return vectors.name[: -len("_emb.pickle")]


def check_inputs(official, official_file, data):
    """Exit with one line unless ``official`` holds ``official_file`` and ``data`` is an export."""
    if not (official / official_file).is_file():
        sys.exit(f"error: {official} has no {official_file}: pass a checkout of the authors' code.")
    if not (data / "data_statis.df").is_file():
        sys.exit(f"error: {data} is not an `export alphafuse` folder (no data_statis.df).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the authors' code")
    parser.add_argument("--data", type=Path, required=True, help="an `export alphafuse` folder")
    parser.add_argument("--models", nargs="+", default=["AlphaFuse", "SASRec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", required=True, help="path prefix of OUT.csv / OUT.md")
    args = parser.parse_args()
    check_inputs(args.official, "train.py", args.data)
    csv_path, logs = Path(f"{args.out}.csv"), Path(f"{args.out}-logs")
    logs.mkdir(parents=True, exist_ok=True)
    done = {(r["model"], int(r["seed"])) for r in read_runs(csv_path)}
    # Seed by seed, so that a cut-short table still compares the models on the same seeds.
    todo = [(m, s) for s in args.seeds for m in args.models if (m, s) not in done]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(train_official, args.official, args.data, m, s, logs / f"{m}-{s}.log")
            for m, s in todo
        ]
        for future in as_completed(futures):
            row = future.result()
            append_run(csv_path, row, FIELDS)
            print(row, flush=True)
    runs = read_runs(csv_path)
    lines = [
        f"# The authors' SASRec code on `{args.data.name}`",
        "",
        f"Machine: {machine()}; one thread a run. Command: `python benchmarks/parity/official_parity.py "
        + " ".join(sys.argv[1:])
        + "`.",
        "",
        "| model | seeds | " + " | ".join(METRICS) + " | best epoch | epochs | seconds |",
        "|---|---|" + "---|" * (len(METRICS) + 3),
    ]
    for model in args.models:
        chosen = [r for r in runs if r["model"] == model]
        if not chosen:
            continue
        cells = []
        for key in [*METRICS, "best_epoch", "epochs", "seconds"]:
            values = [float(r[key]) for r in chosen]
            mean = sum(values) / len(values)
            spread = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
            cells.append(f"{mean:.4f} ± {spread:.4f}" if key in METRICS else f"{mean:.0f}")
        seeds = ", ".join(sorted(r["seed"] for r in chosen))
        lines.append(f"| {model} | {seeds} | " + " | ".join(cells) + " |")
    write_report(f"{args.out}.md", lines)


if __name__ == "__main__":
    main()
