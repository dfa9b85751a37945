"""The GPU check: every registered model on a CUDA device, in one command.

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu-check.md]

On a machine with a CUDA GPU it

1. trains every registered model for one epoch on ml-100k (histories of 10, small widths) on
   the GPU, then tests it;
2. trains AlphaFuseSASRec in a one-process NCCL group (``nproc=1, world_size=1``);
3. reloads one checkpoint on the GPU with ``load_data_and_model`` and checks that it gives the
   test metrics of the run that saved it;
4. times AlphaFuseSASRec against RecBole's SASRec on the whole of ml-100k (3 epochs each, the
   plugin's defaults, seconds per training epoch).

and writes one markdown report (a line per check, ok or the error). Nothing else in the project
needs a GPU; this script refuses to start without one.
"""

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.report import machine, write_report

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
}


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
    parser.add_argument("--dataset", default="ml-100k")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; the GPU check runs on a machine with a GPU.")

    from recbole_alphafuse.quick_start import load_data_and_model, run
    from recbole_alphafuse.registry import get_trainer, plugin_models

    lines = ["| check | result | detail | seconds |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as saved:
        base = {**SLICE_CONFIG, "checkpoint_dir": saved}
        for model in sorted(plugin_models()):
            check(
                f"{model}, one epoch",
                lines,
                lambda m=model: (
                    "test ndcg@10 "
                    f"{run(model=m, dataset=args.dataset, config_dict=base)['test_result']['ndcg@10']}"
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
                        dataset=args.dataset,
                        config_dict=base,
                        nproc=1,
                        world_size=1,
                        port="5679",
                    )["test_result"]["ndcg@10"]
                )
            ),
        )

        def reload_on_gpu():
            result = run(model="AlphaFusePreferDiff", dataset=args.dataset, config_dict=base)
            config, model, _, _, _, test_data = load_data_and_model(result["model_file"])
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            reloaded = dict(trainer.evaluate(test_data, load_best_model=False))
            if reloaded != dict(result["test_result"]):
                raise AssertionError(f"reloaded {reloaded} != saved {result['test_result']}")
            return f"AlphaFusePreferDiff on {next(model.parameters()).device}: same test metrics"

        check("checkpoint reloaded on the GPU", lines, reload_on_gpu)

        def epoch_times():
            seconds = {}
            for model in ("SASRec", "AlphaFuseSASRec"):
                config = {
                    "epochs": 3,
                    "checkpoint_dir": saved,
                    "show_progress": False,
                    "use_gpu": True,
                    "train_positions": "last",
                }
                start = time.perf_counter()
                run(model=model, dataset=args.dataset, config_dict=config)
                seconds[model] = (time.perf_counter() - start) / 3
            ratio = seconds["AlphaFuseSASRec"] / seconds["SASRec"]
            return (
                f"seconds per epoch (training and validation, RecBole's rows): SASRec "
                f"{seconds['SASRec']:.2f}, AlphaFuseSASRec {seconds['AlphaFuseSASRec']:.2f} "
                f"(ratio {ratio:.2f})"
            )

        check(f"epoch time on {args.dataset}", lines, epoch_times)

    write_report(
        args.out,
        ["# GPU check", "", "Command: `python benchmarks/gpu_check.py`", f"Machine: {machine()}."]
        + ["", *lines],
    )
    if any("| FAILED |" in line for line in lines):
        sys.exit(1)


if __name__ == "__main__":
    main()
