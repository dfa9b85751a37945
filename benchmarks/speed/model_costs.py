"""Trainable parameters and full-sort inference time of every model, as in the AlphaFuse
paper's efficiency table.

    python benchmarks/speed/model_costs.py --dataset=ml-100k --repeats=3 \
        --out benchmarks/results/model-costs-ml-100k.md [--key=value ...]

Every plugin model and RecBole's SASRec, GRU4Rec and BERT4Rec are built with their defaults on
the same data (``--key=value`` flags override all); models are untrained (cost does not depend
on training). Diffusion models sample with their default ``sampling_steps``.

Results page: benchmarks/results/costs.md.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import timing_arguments, write_report
from benchmarks.speed.efficiency import build, time_evaluation
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.registry import plugin_models

RECBOLE_MODELS = ["SASRec", "GRU4Rec", "BERT4Rec"]


def main():
    args, overrides = timing_arguments(__doc__.splitlines()[0], repeats=3, eval_rounds=3)

    rows = []
    for name in RECBOLE_MODELS + list(plugin_models()):
        config, dataset, model, trainer, _, test_data = build(name, args.dataset, overrides)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        seconds = statistics.median(
            time_evaluation(trainer, test_data, args.eval_rounds) for _ in range(args.repeats)
        )
        width = model.item_embedding.weight.shape[1]
        rows.append((name, width, trainable, seconds))
        print(f"{name}: {trainable:,} trainable, {seconds:.3f}s", flush=True)

    sasrec_params, sasrec_time = rows[0][2], rows[0][3]
    lines = [
        f"Dataset `{args.dataset}` ({dataset.item_num - 1} items), defaults of each model "
        f"(overrides: {overrides}); full-sort evaluation of the test users, median of "
        f"{args.repeats} timings of {args.eval_rounds} evaluations each, untrained models, "
        f"on {machine()}.",
        "",
        "| model | item width | trainable parameters | x SASRec | full-sort eval (s) | x SASRec |",
        "|---|---|---|---|---|---|",
    ]
    for name, width, trainable, seconds in rows:
        lines.append(
            f"| {name} | {width} | {trainable:,} | {trainable / sasrec_params:.2f} | "
            f"{seconds:.3f} | {seconds / sasrec_time:.1f} |"
        )
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
