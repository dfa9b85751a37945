"""The GPU check: every registered model on a CUDA device, in one command.

    python benchmarks/gpu/gpu_check.py [--out benchmarks/results/gpu-check.md]

On a machine with a CUDA GPU it

1. trains every registered model for one epoch on a slice of ml-100k (its first ``--users``
   users, histories of 10, small widths) on the GPU, then tests it;
2. trains AlphaFuseSASRec in a one-process NCCL group (``nproc=1, world_size=1``);
3. reloads one checkpoint on the GPU with ``load_data_and_model`` and checks that it gives the
   test metrics of the run that saved it;
4. times a training epoch and a full-sort evaluation of AlphaFuseSASRec against RecBole's SASRec
   on the whole of ml-100k with ``benchmarks/speed/efficiency.py`` (its report beside this one).

and writes one markdown report (a line per check, ok or the error). Nothing else in the project
needs a GPU; this script refuses to start without one.

Results page: no study page: a report of the checks, wherever --out names it.
"""

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from benchmarks.report import write_report
from recbole_alphafuse.benchmark.report import machine

SLICE_CONFIG = {
    "epochs": 1,
    "MAX_ITEM_LIST_LENGTH": 10,
    "hidden_size": 32,
    "null_dim": 16,
    "null_thres": None,
    "n_layers": 1,
    "n_heads": 1,
    "inner_size": 64,
    "train_batch_size": 1024,
    "eval_batch_size": 1024,
    "show_progress": False,
    "use_gpu": True,
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
}


def write_slice(data_path, users):
    """``data_path/ml-slice``: the interactions of ml-100k's first ``users`` users (as listed)
    and the text of their items, from the copy inside the recbole wheel."""
    from recbole_alphafuse.data.prepare import bundled_dataset_dir

    source = bundled_dataset_dir("ml-100k")
    folder = Path(data_path) / "ml-slice"
    folder.mkdir(parents=True)
    header, *rows = (source / "ml-100k.inter").read_text().splitlines()
    kept_users = list(dict.fromkeys(row.split("\t")[0] for row in rows))[:users]
    rows = [row for row in rows if row.split("\t")[0] in set(kept_users)]
    (folder / "ml-slice.inter").write_text("\n".join([header, *rows]) + "\n")
    items = {row.split("\t")[1] for row in rows}
    header, *item_rows = (source / "ml-100k.item").read_text(encoding="utf-8").splitlines()
    item_rows = [row for row in item_rows if row.split("\t")[0] in items]
    (folder / "ml-slice.item").write_text("\n".join([header, *item_rows]) + "\n", encoding="utf-8")


def check(name, lines, work):
    """Run ``work()``; record ``ok`` with its detail, or the error."""
    start = time.perf_counter()
    try:
        detail = work()
        lines.append(f"| {name} | ok | {detail} | {time.perf_counter() - start:.1f} |")
    except Exception as error:  # a report of every check, whatever fails
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}".replace("|", "/").splitlines()[0][:200]
        lines.append(f"| {name} | FAILED | {message} | {time.perf_counter() - start:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/gpu-check.md")
    parser.add_argument("--dataset", default="ml-100k", help="for the epoch-time comparison")
    parser.add_argument("--users", type=int, default=200, help="users of the one-epoch slice")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; the GPU check runs on a machine with a GPU.")

    from recbole_alphafuse.quick_start import load_data_and_model, run
    from recbole_alphafuse.registry import get_trainer, plugin_models

    lines = ["| check | result | detail | seconds |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as saved:
        write_slice(Path(saved) / "data", args.users)
        base = {**SLICE_CONFIG, "checkpoint_dir": saved, "data_path": str(Path(saved) / "data")}
        for model in sorted(plugin_models()):
            check(
                f"{model}, one epoch",
                lines,
                lambda m=model: (
                    "test ndcg@10 "
                    f"{run(model=m, dataset='ml-slice', config_dict=base)['test_result']['ndcg@10']}"
                ),
            )

        check(
            "AlphaFuseSASRec, one-process NCCL group",
            lines,
            lambda: (
                "test ndcg@10 "
                + str(
                    run(
                        model="AlphaFuseSASRec",
                        dataset="ml-slice",
                        config_dict=base,
                        nproc=1,
                        world_size=1,
                        port="5679",
                    )["test_result"]["ndcg@10"]
                )
            ),
        )

        def reload_on_gpu():
            result = run(model="AlphaFusePreferDiff", dataset="ml-slice", config_dict=base)
            config, model, _, _, _, test_data = load_data_and_model(result["model_file"])
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            reloaded = dict(trainer.evaluate(test_data, load_best_model=False))
            if reloaded != dict(result["test_result"]):
                raise AssertionError(f"reloaded {reloaded} != saved {result['test_result']}")
            return f"AlphaFusePreferDiff on {next(model.parameters()).device}: same test metrics"

        check("checkpoint reloaded on the GPU", lines, reload_on_gpu)

        def epoch_times():
            # benchmarks/speed/efficiency.py times both models under the same load, on the GPU here.
            out = Path(args.out).with_name(f"efficiency-{args.dataset}-gpu.md")
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve().parents[1] / "speed" / "efficiency.py"),
                    f"--dataset={args.dataset}",
                    f"--out={out}",
                ],
                check=True,
            )
            return f"AlphaFuseSASRec against SASRec: see {out.name}"

        check(f"epoch time on {args.dataset}", lines, epoch_times)

    write_report(
        args.out,
        [
            "# GPU check",
            "",
            "Command: `python benchmarks/gpu/gpu_check.py`",
            f"Machine: {machine()}.",
        ]
        + ["", *lines],
    )
    if any("| FAILED |" in line for line in lines):
        sys.exit(1)


if __name__ == "__main__":
    main()
