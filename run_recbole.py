"""Train and test a model: ``python run_recbole.py --model=AlphaFuseSASRec --dataset=ml-100k``.

Same flags as RecBole's run_recbole.py: ``--model``, ``--dataset``, ``--config_files="a.yaml b.yaml"``
and any ``--key=value`` config override. Works for the plugin's models and RecBole's own.
Distributed training as in RecBole: ``--nproc=2`` trains in two processes on this machine (one
GPU each, or gloo on the CPU where there is no GPU); ``--world_size``, ``--ip``, ``--port`` and
``--group_offset`` join processes of several machines.
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
    parser.add_argument("--nproc", type=int, default=1, help="processes on this machine")
    parser.add_argument(
        "--world_size", type=int, default=-1, help="processes in all (default nproc)"
    )
    parser.add_argument("--ip", type=str, default="localhost", help="address of rank 0's machine")
    parser.add_argument("--port", type=str, default="5678", help="port of rank 0's machine")
    parser.add_argument("--group_offset", type=int, default=0, help="first rank on this machine")
    args, _ = parser.parse_known_args()
    config_files = args.config_files.strip().split(" ") if args.config_files else None
    try:
        run(
            model=args.model,
            dataset=args.dataset,
            config_file_list=config_files,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
