"""Catalogue scale: a training epoch, the full ranking of the test users and the peak resident
memory of each, for the SASRec models under each loss, from 10^4 to 10^6 items.

    # a synthetic catalogue: dataset/synthetic-<items>/ (.inter, .itememb, .yaml)
    python benchmarks/speed/catalogue_scale.py generate --items 1000000 [--users 30000] [--seed 0]
    # one model and loss in this (fresh) process; appends one JSON line to --out
    python benchmarks/speed/catalogue_scale.py measure --dataset synthetic-1000000 \
        --model AlphaFuseSASRec --loss SampledSoftmax --out benchmarks/results/catalogue-scale.jsonl \
        [--key=value ...]
    # the table of every line measured
    python benchmarks/speed/catalogue_scale.py report --out benchmarks/results/catalogue-scale.jsonl

``--loss`` is a ``loss_type``, or ``ChunkedCE`` for ``CE`` with ``ce_chunk_size`` (2048 unless
given). Each measurement runs on one thread. Peak memory is the process's resident set, sampled
every 20 ms from the start of a phase: ``train`` is one epoch, ``rank`` is RecBole's full-ranking
evaluation of every test user (its time is also given per 10,000 users).

The synthetic catalogue: items fall into topics (one per 200 items, at most 500); each topic's
items have Zipf popularity (exponent 1.1) and language vectors of 64 dimensions that carry the
topic (its centroid plus noise, L2-normalised). Each user has a home topic and draws 80% of their
history from it and the rest from the whole catalogue by popularity; histories are long enough
for 1.2 interactions per item on average (at least 12), and every item that no user drew is
added to a random user's history, so the tail is complete, as in a real catalogue.

Results page: benchmarks/results/catalogue-scale.md.
"""

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LANGUAGE_DIM = 64
ZIPF_EXPONENT = 1.1


def zipf_weights(count, rng):
    weights = 1.0 / np.arange(1, count + 1) ** ZIPF_EXPONENT
    rng.shuffle(weights)
    return weights / weights.sum()


def synthetic_catalogue(n_items, n_users, seed):
    """(histories: a list of item-id arrays, ids 1..n_items, language vectors [n_items, 64])."""
    rng = np.random.default_rng(seed)
    n_topics = int(np.clip(n_items // 200, 2, 500))
    topic = rng.integers(0, n_topics, n_items)
    centroids = rng.normal(size=(n_topics, LANGUAGE_DIM))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vectors = centroids[topic] + 0.6 * rng.normal(size=(n_items, LANGUAGE_DIM)) / 8.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    popularity = zipf_weights(n_items, rng)
    members = [np.flatnonzero(topic == t) for t in range(n_topics)]
    # Cumulative popularity, overall and within each topic: a draw is one binary search.
    overall = np.cumsum(popularity)
    within = [np.cumsum(popularity[m]) / popularity[m].sum() for m in members]

    def draw(cumulative, count):
        return np.minimum(np.searchsorted(cumulative, rng.random(count)), len(cumulative) - 1)

    mean_length = max(12, int(np.ceil(1.2 * n_items / n_users)))
    lengths = 5 + rng.geometric(1.0 / (mean_length - 4), n_users)
    home = rng.integers(0, n_topics, n_users)
    histories = []
    for user in range(n_users):
        length = lengths[user]
        from_home = rng.random(length) < 0.8
        items = draw(overall, length)
        if members[home[user]].size:
            items[from_home] = members[home[user]][draw(within[home[user]], from_home.sum())]
        histories.append(list(items + 1))
    used = np.zeros(n_items + 1, dtype=bool)
    for history in histories:
        used[history] = True
    for item in np.flatnonzero(~used[1:]) + 1:
        history = histories[rng.integers(n_users)]
        history.insert(rng.integers(len(history) + 1), int(item))
    return histories, vectors.astype(np.float32)


def generate(args):
    from recbole_alphafuse.data.itememb import write_itememb

    name = f"synthetic-{args.items}"
    folder = Path(args.data_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    histories, vectors = synthetic_catalogue(args.items, args.users, args.seed)
    users = np.repeat(np.arange(1, len(histories) + 1), [len(h) for h in histories])
    inter = pd.DataFrame(
        {
            "user_id:token": users,
            "item_id:token": np.concatenate(histories),
            "timestamp:float": np.concatenate([np.arange(len(h)) for h in histories]),
        }
    )
    inter.to_csv(folder / f"{name}.inter", sep="\t", index=False)
    write_itememb(folder / f"{name}.itememb", np.arange(1, args.items + 1), vectors)
    (folder / f"{name}.yaml").write_text("load_col:\n  inter: [user_id, item_id, timestamp]\n")
    print(
        f"wrote {folder}: {len(histories)} users, {args.items} items, {len(inter)} interactions "
        f"in {time.perf_counter() - start:.0f} s"
    )


class PeakMemory:
    """The process's peak resident set since :meth:`start`, sampled every 20 ms."""

    def __init__(self):
        self.process = psutil.Process()
        self.peak = 0
        self._running = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def start(self):
        self.peak = self.process.memory_info().rss

    def gigabytes(self):
        self.peak = max(self.peak, self.process.memory_info().rss)
        return round(self.peak / 2**30, 2)


SAMPLED_LOSSES = ("SampledSoftmax", "gBCE")


def loss_settings(loss, chunk_size):
    if loss == "ChunkedCE":
        return {"loss_type": "CE", "ce_chunk_size": chunk_size}
    return {"loss_type": loss}


def measure(args, overrides):
    import torch
    from recbole.utils import init_seed

    from recbole_alphafuse.benchmark.report import machine
    from recbole_alphafuse.config import Config
    from recbole_alphafuse.quick_start import build_data
    from recbole_alphafuse.registry import get_trainer

    torch.set_num_threads(1)
    memory = PeakMemory()
    settings = {
        "data_path": args.data_path,
        "show_progress": False,
        **loss_settings(args.loss, args.chunk_size),
        **overrides,
    }
    start = time.perf_counter()
    config = Config(model=args.model, dataset=args.dataset, config_dict=settings)
    if args.loss in SAMPLED_LOSSES:
        settings["n_negatives"] = config["n_negatives"]  # the pool, even where it is the default
    init_seed(config["seed"], config["reproducibility"])
    dataset, train_data, _, test_data = build_data(config)
    model = config.model_class(config, train_data._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    load_seconds = time.perf_counter() - start
    load_memory = memory.gigabytes()

    memory.start()
    start = time.perf_counter()
    model.train()
    trainer._train_epoch(train_data, 0, show_progress=False)
    epoch_seconds = time.perf_counter() - start
    train_memory = memory.gigabytes()

    memory.start()
    start = time.perf_counter()
    result = trainer.evaluate(test_data, load_best_model=False)
    rank_seconds = time.perf_counter() - start
    rank_memory = memory.gigabytes()

    interactions = len(dataset.inter_feat)
    users = dataset.user_num - 1
    row = {
        "dataset": args.dataset,
        "items": dataset.item_num - 1,
        "users": users,
        "interactions": interactions,
        "model": args.model,
        "loss": args.loss,
        "settings": {key: value for key, value in settings.items() if key != "data_path"},
        "load_s": round(load_seconds, 1),
        "load_peak_gb": load_memory,
        "epoch_s": round(epoch_seconds, 1),
        "epoch_us_per_interaction": round(1e6 * epoch_seconds / interactions, 1),
        "train_peak_gb": train_memory,
        "rank_s": round(rank_seconds, 1),
        "rank_s_per_10k_users": round(rank_seconds * 10_000 / users, 1),
        "rank_peak_gb": rank_memory,
        "test_ndcg@10_after_1_epoch": round(float(result["ndcg@10"]), 4),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(row), flush=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


def report(args):
    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines() if line]
    lines = [
        "| items | interactions | model | loss | load peak (GiB) | epoch (s) | µs / interaction "
        "| train peak (GiB) | rank (s / 10k users) | rank peak (GiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def loss(row):
        pool = row["settings"].get("n_negatives")
        return f"{row['loss']} (k = {pool:,})" if pool else row["loss"]

    for row in sorted(rows, key=lambda r: (r["items"], r["model"], loss(r))):
        lines.append(
            f"| {row['items']:,} | {row['interactions']:,} | {row['model']} | {loss(row)} | "
            f"{row['load_peak_gb']} | {row['epoch_s']} | {row['epoch_us_per_interaction']} | {row['train_peak_gb']} | "
            f"{row['rank_s_per_10k_users']} | {row['rank_peak_gb']} |"
        )
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write a synthetic catalogue")
    gen.add_argument("--items", type=int, required=True)
    gen.add_argument("--users", type=int, default=30_000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--data-path", default="dataset")
    run = commands.add_parser("measure", help="one model and loss, in this process")
    run.add_argument("--dataset", required=True)
    run.add_argument("--model", required=True)
    run.add_argument("--loss", required=True)
    run.add_argument("--chunk-size", type=int, default=2048)
    run.add_argument("--data-path", default="dataset")
    run.add_argument("--out", required=True)
    table = commands.add_parser("report", help="the table of the measured lines")
    table.add_argument("--out", required=True)
    args, rest = parser.parse_known_args()
    if rest and args.command != "measure":
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "generate":
        generate(args)
    elif args.command == "measure":
        # Other --key=value flags are config overrides (read as YAML), kept from RecBole's argv.
        overrides = {}
        for flag in rest:
            key, _, value = flag.lstrip("-").partition("=")
            overrides[key] = yaml.safe_load(value)
        sys.argv = sys.argv[:1]
        measure(args, overrides)
    else:
        report(args)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
