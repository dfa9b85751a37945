"""Tune a model with RecBole's HyperTuning (hyperopt) through the plugin's objective function.

    python run_hyper.py --model=AlphaFuseSASRec --dataset=ml-100k --params_file=hyper.test \
        [--config_files="a.yaml b.yaml"] [--algo=exhaustive|random|bayes] [--max_evals=N]

Each trial trains on the training split and is selected on the validation metric; the test
result of every trial is reported alongside, and all of them are written to ``--output_file``.
"""

import argparse
import sys

from recbole.trainer import HyperTuning

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.quick_start import objective_function


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=str, default="AlphaFuseSASRec", help="model name")
    parser.add_argument("--dataset", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="fixed config files")
    parser.add_argument("--params_file", type=str, required=True, help="search space file")
    parser.add_argument("--output_file", type=str, default="hyper_result.txt", help="result file")
    parser.add_argument("--display_file", type=str, default=None, help="plot of the trials")
    parser.add_argument("--algo", type=str, default="exhaustive", help="exhaustive, random, bayes")
    parser.add_argument("--max_evals", type=int, default=100, help="trials (random / bayes)")
    parser.add_argument("--early_stop", type=int, default=10, help="trials without progress")
    args, _ = parser.parse_known_args()
    config_files = args.config_files.strip().split(" ") if args.config_files else None

    def objective(config_dict, config_file_list):
        config_dict = {"model": args.model, "dataset": args.dataset, **(config_dict or {})}
        return objective_function(config_dict, config_file_list)

    try:
        hp = HyperTuning(
            objective,
            algo=args.algo,
            early_stop=args.early_stop,
            max_evals=args.max_evals,
            params_file=args.params_file,
            fixed_config_file_list=config_files,
            display_file=args.display_file,
        )
        hp.run()
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")
    hp.export_result(output_file=args.output_file)
    print("best params: ", hp.best_params)
    print("best result: ")
    print(hp.params2result[hp.params2str(hp.best_params)])


if __name__ == "__main__":
    main()
