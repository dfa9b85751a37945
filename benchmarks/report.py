"""What the benchmark scripts share: how they write their table, run a worker and read their flags.
The machine line of a table is `recbole_alphafuse.benchmark.report.machine`, shared with the
benchmark command."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml


def write_report(path, lines):
    """Write the markdown ``lines`` to ``path`` and print them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_worker(script, flags, what):
    """Run ``script`` with ``flags`` in a fresh Python process (its own peak memory) and return
    the JSON object it prints on its last line; exit naming ``what`` if it fails."""
    done = subprocess.run(
        [sys.executable, str(script), *flags], check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"error: the {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timing_arguments(description, repeats, eval_rounds):
    """Parse the timing scripts' flags; other ``--key=value`` flags become config overrides
    (values read as YAML) for every model, and are removed from sys.argv so that RecBole's
    Config does not read them a second time."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument(
        "--eval_rounds", type=int, default=eval_rounds, help="evaluations per timing"
    )
    parser.add_argument("--out", required=True)
    args, extra = parser.parse_known_args()
    overrides = {"show_progress": False, "use_gpu": torch.cuda.is_available()}
    for flag in extra:
        key, _, value = flag.lstrip("-").partition("=")
        overrides[key] = yaml.safe_load(value)
    sys.argv = sys.argv[:1]
    return args, overrides
