"""Train and test a model: ``python run_recbole.py --model=AlphaFuseSASRec --dataset=ml-100k``.

Same flags as RecBole's run_recbole.py: ``--model``, ``--dataset``, ``--config_files="a.yaml b.yaml"``
and any ``--key=value`` config override. Works for the plugin's models and RecBole's own.
"""

import argparse
import sys

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.quick_start import run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", "-m", type=str, default="AlphaFuseSASRec", help="model name")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    args, _ = parser.parse_known_args()
    config_files = args.config_files.strip().split(" ") if args.config_files else None
    try:
        run(model=args.model, dataset=args.dataset, config_file_list=config_files)
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
