"""The diffusion papers' recipes on a GPU, for a fixed number of minutes each.

    python benchmarks/gpu/gpu_diffusion.py --dataset Office-cold --minutes 5 \
        [--out benchmarks/results/gpu-diffusion-Office-cold.md]

Runs AlphaFuseDreamRec under ``properties/DreamRec-paper.yaml`` (the AlphaFuse authors' DreamRec
recipe) and AlphaFusePreferDiff under ``properties/PreferDiff-paper.yaml`` (the PreferDiff
authors'), one after the other, each for ``--minutes`` (or until its early stopping ends it),
and records each run's seconds per training epoch and its validation curve (every evaluation)
in one markdown report. A run stopped by the time limit has not converged: the report says so.
Refuses to start without a CUDA device.

Results page: no study page yet: its report goes wherever --out names it.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from benchmarks.report import write_report
from recbole_alphafuse.benchmark.report import machine

REPO = Path(__file__).resolve().parents[2]

RECIPES = [
    ("AlphaFuseDreamRec", "properties/DreamRec-paper.yaml"),
    ("AlphaFusePreferDiff", "properties/PreferDiff-paper.yaml"),
]
TRAINING = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s")
EVALUATION = re.compile(r"epoch (\d+) evaluating \[time: [\d.]+s, valid_score: ([\d.]+)\]")


def run_for(model, recipe, dataset, minutes):
    """Train ``model`` under ``recipe`` for at most ``minutes``; (log text, stopped by the limit)."""
    command = [
        sys.executable,
        str(REPO / "run_recbole.py"),
        f"--model={model}",
        f"--dataset={dataset}",
        f"--config_files={REPO / recipe}",
        "--use_gpu=True",
        "--show_progress=False",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60 * minutes, check=False
        )
        return done.stdout + done.stderr, False
    except subprocess.TimeoutExpired as stopped:
        parts = [stopped.stdout or "", stopped.stderr or ""]
        return "".join(p.decode() if isinstance(p, bytes) else p for p in parts), True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Office-cold")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; this benchmark runs the paper recipes on a GPU.")
    out = args.out or f"benchmarks/results/gpu-diffusion-{args.dataset}.md"
    lines = [
        f"# The diffusion recipes on a GPU: {args.dataset}",
        "",
        f"Command: `python benchmarks/gpu/gpu_diffusion.py --dataset {args.dataset} "
        f"--minutes {args.minutes:g}`",
        f"Machine: {machine()}.",
    ]
    for model, recipe in RECIPES:
        start = time.perf_counter()
        log, stopped = run_for(model, recipe, args.dataset, args.minutes)
        epochs = [float(seconds) for _, seconds in TRAINING.findall(log)]
        curve = [f"{int(epoch)}: {score}" for epoch, score in EVALUATION.findall(log)]
        test = re.search(r"test result: (.*)", log)
        lines += [
            "",
            f"## {model}, `{recipe}`",
            "",
            f"- wall time {time.perf_counter() - start:.0f} s; "
            + ("stopped by the time limit (not converged)" if stopped else "ended by itself"),
            f"- epochs trained: {len(epochs)}; seconds per training epoch: "
            + (f"{sum(epochs) / len(epochs):.2f}" if epochs else "none finished"),
            "- validation curve (epoch: valid_metric): " + (", ".join(curve) or "none"),
            f"- test result: {test.group(1) if test else 'none (the run did not finish)'}",
        ]
        if not epochs:
            lines.append("- last lines of its log: `" + " / ".join(log.splitlines()[-3:]) + "`")
    write_report(out, lines)


if __name__ == "__main__":
    main()
