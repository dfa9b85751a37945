"""Training-epoch time, full-sort evaluation time and trainable parameters, AlphaFuse vs SASRec;
evaluation time of the diffusion models against SASRec's at 5, 20 and 100 sampling steps.

    python benchmarks/speed/efficiency.py --dataset=ml-100k --repeats=2 \
        --out benchmarks/results/efficiency-ml-100k.md [--key=value ...]

Both models are built on the same data with the same encoder settings (extra ``--key=value``
flags override both). Runs alternate between the models and the median of ``--repeats`` is kept,
so the ratios compare timings taken under the same machine load. Expected: epoch-time and
evaluation-time ratios <= 1.05; AlphaFuse's trainable parameters = SASRec's minus
n_items x (hidden_size - null_dim).

Results page: benchmarks/results/costs.md.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recbole.data import data_preparation
from recbole.utils import init_seed

from benchmarks.report import timing_arguments, write_report
from recbole_alphafuse.benchmark.report import machine
from recbole_alphafuse.config import Config
from recbole_alphafuse.quick_start import create_dataset
from recbole_alphafuse.registry import get_trainer

MODELS = ("SASRec", "AlphaFuseSASRec")
DIFFUSION_MODELS = ("IDDreamRec", "WhitenedDreamRec", "AlphaFuseDreamRec")
SAMPLING_STEPS = (5, 20, 100)


def build(model_name, dataset_name, overrides):
    config = Config(model=model_name, dataset=dataset_name, config_dict=overrides)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, test_data = data_preparation(config, dataset)
    model = config.model_class(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], model_name)(config, model)
    return config, dataset, model, trainer, train_data, test_data


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def time_evaluation(trainer, eval_data, rounds):
    """Seconds for one full-sort evaluation of ``eval_data``, averaged over ``rounds`` in a row
    (one evaluation of a small test set is too short to time on its own)."""
    return (
        timed(lambda: [trainer.evaluate(eval_data, load_best_model=False) for _ in range(rounds)])
        / rounds
    )


def main():
    args, overrides = timing_arguments(__doc__.splitlines()[0], repeats=2, eval_rounds=5)

    built = {name: build(name, args.dataset, overrides) for name in MODELS}
    epoch_times = {name: [] for name in MODELS}
    eval_times = {name: [] for name in MODELS}
    for repeat in range(args.repeats):
        for name in MODELS:
            config, _, model, trainer, train_data, test_data = built[name]
            model.train()
            epoch_times[name].append(timed(lambda: trainer._train_epoch(train_data, repeat)))
            eval_times[name].append(time_evaluation(trainer, test_data, args.eval_rounds))
            print(
                f"{name} repeat {repeat}: epoch {epoch_times[name][-1]:.1f}s, "
                f"full-sort eval {eval_times[name][-1]:.2f}s",
                flush=True,
            )

    config, dataset, _, _, _, _ = built["AlphaFuseSASRec"]
    params = {
        name: sum(p.numel() for p in built[name][2].parameters() if p.requires_grad)
        for name in MODELS
    }
    frozen = dataset.item_num * (
        config["hidden_size"] - built["AlphaFuseSASRec"][2].item_embedding.null_dim
    )
    epoch = {name: statistics.median(epoch_times[name]) for name in MODELS}
    evaluation = {name: statistics.median(eval_times[name]) for name in MODELS}
    lines = [
        f"Dataset `{args.dataset}` ({dataset.user_num - 1} users, {dataset.item_num - 1} items, "
        f"{len(built['SASRec'][4].dataset)} training sequences), hidden_size {config['hidden_size']}, "
        f"null_dim {config['null_dim']}, n_layers {config['n_layers']}, "
        f"MAX_ITEM_LIST_LENGTH {config['MAX_ITEM_LIST_LENGTH']}, loss {built['AlphaFuseSASRec'][2].loss_fct.loss_type}, "
        f"train_batch_size {config['train_batch_size']}, eval_batch_size {config['eval_batch_size']}; "
        f"median of {args.repeats} alternating runs (evaluation: mean of {args.eval_rounds} in a "
        f"row) on {machine()}.",
        "",
        "| model | train epoch (s) | full-sort test eval (s) | trainable parameters |",
        "|---|---|---|---|",
    ]
    for name in MODELS:
        lines.append(f"| {name} | {epoch[name]:.2f} | {evaluation[name]:.3f} | {params[name]:,} |")
    lines += [
        f"| ratio AlphaFuse / SASRec | {epoch['AlphaFuseSASRec'] / epoch['SASRec']:.3f} | "
        f"{evaluation['AlphaFuseSASRec'] / evaluation['SASRec']:.3f} | "
        f"{params['AlphaFuseSASRec'] / params['SASRec']:.3f} |",
        "",
        f"SASRec - AlphaFuseSASRec trainable parameters = {params['SASRec'] - params['AlphaFuseSASRec']:,}; "
        f"n_items x (hidden_size - null_dim) = {frozen:,} "
        f"({'equal' if params['SASRec'] - params['AlphaFuseSASRec'] == frozen else 'NOT equal'}).",
    ]
    lines += diffusion_table(
        args, overrides, built["SASRec"], statistics.median(eval_times["SASRec"])
    )
    write_report(args.out, lines)


def diffusion_table(args, overrides, sasrec, sasrec_eval):
    """Full-sort evaluation time of each diffusion model per sampling_steps, over SASRec's."""
    _, _, _, sasrec_trainer, _, sasrec_test = sasrec
    lines = [
        "",
        f"Diffusion models (untrained; evaluation cost does not depend on training), full-sort test "
        f"evaluation time, median of {args.repeats} runs, and its ratio to SASRec's "
        f"({sasrec_eval:.3f}s, measured again beside each):",
        "",
        "| model | hidden | "
        + " | ".join(f"{steps} steps (s, x SASRec)" for steps in SAMPLING_STEPS)
        + " |",
        "|---|---|" + "---|" * len(SAMPLING_STEPS),
    ]
    for name in DIFFUSION_MODELS:
        config, _, model, trainer, _, test_data = build(name, args.dataset, overrides)
        cells = []
        for steps in SAMPLING_STEPS:
            model.sampling_steps = steps
            own, reference = [], []
            for _ in range(args.repeats):
                own.append(time_evaluation(trainer, test_data, args.eval_rounds))
                reference.append(time_evaluation(sasrec_trainer, sasrec_test, args.eval_rounds))
            own_time = statistics.median(own)
            cells.append(f"{own_time:.3f} (x{own_time / statistics.median(reference):.1f})")
            print(f"{name} {steps} steps: {own_time:.3f}s", flush=True)
        lines.append(f"| {name} | {model.hidden_size} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
