"""Command line of the plugin's data tools.

python -m recbole_alphafuse embed --dataset NAME [--fields f1,f2] [--lm PATH] ...
python -m recbole_alphafuse convert lcrec --input DIR --dataset NAME
"""

import argparse
import logging
import sys
from pathlib import Path

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.convert import convert_lcrec
from recbole_alphafuse.data.embed import DEFAULT_ITEM_FIELD, embed_dataset
from recbole_alphafuse.data.prepare import copy_bundled_dataset


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m recbole_alphafuse")
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser(
        "embed",
        help="encode item text into dataset/NAME/NAME.itememb",
        description="Encode the text fields of NAME.item with a Hugging Face encoder (mean "
        "pooling) and write NAME.itememb for exactly the items of NAME.inter.",
    )
    embed.add_argument("--dataset", required=True, help="dataset name (folder under --data-path)")
    embed.add_argument("--data-path", default="dataset", help="folder holding dataset folders")
    embed.add_argument(
        "--fields", default=None, help="comma-separated .item text fields (default: all)"
    )
    embed.add_argument("--item-field", default=DEFAULT_ITEM_FIELD, help="item id field")
    embed.add_argument(
        "--lm", default=None, help="encoder folder or name (default: all-MiniLM-L6-v2)"
    )
    embed.add_argument("--batch-size", type=int, default=64)
    embed.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present"
    )

    convert = commands.add_parser("convert", help="convert another layout to atomic files")
    convert.add_argument("layout", choices=["lcrec"], help="lcrec: X.inter.json + X.item.json")
    convert.add_argument("--input", required=True, help="folder of the source files")
    convert.add_argument("--dataset", required=True, help="name of the atomic dataset to write")
    convert.add_argument("--data-path", default="dataset", help="folder holding dataset folders")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_path = Path(args.data_path) / args.dataset
    try:
        if args.command == "convert":
            convert_lcrec(args.input, args.data_path, args.dataset)
            return
        copy_bundled_dataset(args.dataset, data_path)
        embed_dataset(
            data_path,
            args.dataset,
            fields=args.fields.split(",") if args.fields else None,
            model_path=args.lm,
            batch_size=args.batch_size,
            device=args.device,
            item_field=args.item_field,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
