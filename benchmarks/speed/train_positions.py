"""Training cost of ``train_positions: all`` against RecBole's rows (``last``), same model, same
data, at several history lengths.

    python benchmarks/speed/train_positions.py --dataset=ml-100k --lengths="[50, 20]" --batches=10 \
        --out benchmarks/results/train-positions-ml-100k.md [--model=AlphaFuseSASRec] [--key=value ...]

For each length both modes are built on the same data; the first ``--batches`` training steps
(forward, loss, backward, Adam step) of each are timed, alternating between the modes
``--repeats`` times (median kept), and the epoch time is that per-step time times the
epoch's number of batches. Both modes train every target of RecBole's rows once per epoch.

Results page: benchmarks/results/train-positions.md.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import timing_arguments, write_report
from benchmarks.speed.efficiency import build
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.data.windows import windowed_train_data


def seconds_per_step(model, trainer, loader, steps):
    model.train()
    optimizer = trainer.optimizer
    done = 0
    start = time.perf_counter()
    for batch in loader:
        batch = batch.to(model.device)
        optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        optimizer.step()
        done += 1
        if done == steps:
            break
    return (time.perf_counter() - start) / done


def main():
    args, overrides = timing_arguments(__doc__.splitlines()[0], repeats=2, eval_rounds=1)
    model_name = overrides.pop("model", "AlphaFuseSASRec")
    steps = overrides.pop("batches", 20)
    lengths = overrides.pop("lengths", [50, 20])
    lengths = lengths if isinstance(lengths, list) else [lengths]
    lines = [
        (
            f"`{model_name}` on `{args.dataset}`, RecBole's default encoder and batch size unless "
            f"set ({overrides}); first {steps} training steps of each mode timed, median of "
            f"{args.repeats} alternating repeats, scaled to the epoch's batches; {machine()}."
        ),
        "",
        "| history length | mode | training rows | batches / epoch | s / batch | epoch (s) |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for length in lengths:
        built = {}
        for mode in ("last", "all"):
            settings = {**overrides, "MAX_ITEM_LIST_LENGTH": length, "train_positions": mode}
            config, _, model, trainer, train_data, _ = build(model_name, args.dataset, settings)
            if mode == "all":
                train_data = windowed_train_data(config, train_data)
            built[mode] = (model, trainer, train_data)
        times = {mode: [] for mode in built}
        for _ in range(args.repeats):
            for mode, (model, trainer, loader) in built.items():
                times[mode].append(seconds_per_step(model, trainer, loader, steps))
        epoch = {}
        for mode, (_, _, loader) in built.items():
            per_step = statistics.median(times[mode])
            epoch[mode] = per_step * len(loader)
            lines.append(
                f"| {length} | {mode} | {len(loader.dataset):,} | {len(loader)} | "
                f"{per_step:.3f} | {epoch[mode]:.1f} |"
            )
            print(lines[-1], flush=True)
        ratios.append((length, epoch["last"] / epoch["all"]))
    lines += [
        "",
        "Epoch time last / all: " + ", ".join(f"{r:.1f}x at length {n}" for n, r in ratios),
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
