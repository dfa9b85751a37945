"""Test metrics of several model variants on one dataset, over seeds, as a markdown table.

    python benchmarks/quality.py --dataset=office --config_files=benchmarks/office.yaml \
        --variants "SASRec" "AlphaFuseSASRec" "AlphaFuseSASRec:semantic_scale=1.0" \
        --seeds 2020 2021 --out benchmarks/results/office-defaults.md

A variant is ``Model`` or ``Model:key=value,key=value`` (values parsed as YAML). Each run trains
with early stopping on the validation metric and reports the test metrics of the best epoch.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import machine, write_report
from recbole_alphafuse.quick_start import run


def parse_variant(text):
    model, _, settings = text.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    return model, overrides


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config_files", default=None)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--metrics", nargs="+", default=["ndcg@10", "hit@10", "mrr@10"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config would read the flags above as config keys
    config_files = args.config_files.split(" ") if args.config_files else None

    rows = []
    with tempfile.TemporaryDirectory() as checkpoints:
        for variant in args.variants:
            model, overrides = parse_variant(variant)
            results = []
            for seed in args.seeds:
                start = time.perf_counter()
                result = run(
                    model=model,
                    dataset=args.dataset,
                    config_file_list=config_files,
                    config_dict={
                        **overrides,
                        "seed": seed,
                        "checkpoint_dir": checkpoints,
                        "show_progress": False,
                    },
                )
                results.append(result["test_result"])
                print(
                    f"{variant} seed={seed}: {dict(result['test_result'])} "
                    f"({time.perf_counter() - start:.0f}s)",
                    flush=True,
                )
            rows.append((variant, results))

    lines = [
        f"Dataset `{args.dataset}`, config `{args.config_files}`, seeds {args.seeds}; "
        f"test metrics at the best validation epoch, mean (min-max over seeds).",
        f"Machine: {machine()}.",
        "",
        "| variant | " + " | ".join(args.metrics) + " |",
        "|---|" + "---|" * len(args.metrics),
    ]
    for variant, results in rows:
        cells = []
        for metric in args.metrics:
            values = [r[metric] for r in results]
            cells.append(f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
