"""Command line of the plugin: training, tuning and the data tools.

python -m recbole_alphafuse run --model=M --dataset=D [--key=value ...]   (as run_recbole.py)
python -m recbole_alphafuse tune --model=M --dataset=D --params_file=F ... (as run_hyper.py)
python -m recbole_alphafuse config --model=M --dataset=D [--key=value ...]  (every setting, its source)
python -m recbole_alphafuse benchmark --datasets D.. --models M.. --trials N --seeds S.. --out P
python -m recbole_alphafuse embed --dataset NAME [--fields f1,f2] [--lm PATH] [--chunk-size N] ...
python -m recbole_alphafuse embed --dataset NAME --from-file F.npy|.pt|.pickle [--ids IDS]
python -m recbole_alphafuse convert lcrec --input DIR --dataset NAME
python -m recbole_alphafuse convert alphafuse --input DIR --dataset NAME [--embeddings FILE]
python -m recbole_alphafuse convert amazon --reviews F --meta F --dataset NAME [--kcore 5]
python -m recbole_alphafuse split cold-start --dataset NAME [--ratios 0.8,0.1,0.1] ...
python -m recbole_alphafuse export alphafuse --dataset NAME --output DIR [--max-history N]
"""

import argparse
import logging
import sys
from pathlib import Path

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.benchmark.command import benchmark_command
from recbole_alphafuse.commands import config_command, run_command, tune_command
from recbole_alphafuse.data.convert import convert_alphafuse, convert_amazon, convert_lcrec
from recbole_alphafuse.data.embed import DEFAULT_CHUNK_SIZE, DEFAULT_ITEM_FIELD, embed_dataset
from recbole_alphafuse.data.own_vectors import embed_from_file
from recbole_alphafuse.data.prepare import copy_bundled_dataset
from recbole_alphafuse.data.split import split_cold_start
from recbole_alphafuse.export import export_alphafuse


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m recbole_alphafuse")
    commands = parser.add_subparsers(dest="command", required=True)
    # Parsed by the commands themselves (see main): listed here for --help.
    commands.add_parser(
        "run", add_help=False, help="train and test a model, as run_recbole.py (see run --help)"
    )
    commands.add_parser(
        "tune", add_help=False, help="hyperparameter search, as run_hyper.py (see tune --help)"
    )
    commands.add_parser(
        "benchmark",
        add_help=False,
        help="tune models on validation with the same budget, test over seeds (see benchmark --help)",
    )
    commands.add_parser(
        "config",
        add_help=False,
        help="print every setting a run would use and where it came from (same flags as run)",
    )
    embed = commands.add_parser(
        "embed",
        help="encode item text (or take --from-file vectors) into dataset/NAME/NAME.itememb",
        description="Encode the text fields of NAME.item with a Hugging Face encoder (mean "
        "pooling) and write NAME.itememb for exactly the items of NAME.inter; or, with "
        "--from-file, take vectors made elsewhere.",
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
    embed.add_argument("--batch-size", type=int, default=64, help="texts per encoder call")
    embed.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="items encoded and saved together; a rerun after an interruption resumes from the "
        f"last finished chunk (default {DEFAULT_CHUNK_SIZE})",
    )
    embed.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present"
    )
    embed.add_argument(
        "--from-file",
        default=None,
        help="vectors made elsewhere instead of encoding: a 2-D array (.npy, .pt, .pickle) with "
        "--ids, or a .pt/.pickle dict {item token: vector}",
    )
    embed.add_argument(
        "--ids", default=None, help="text file: the item token of array row i on line i"
    )
    embed.add_argument(
        "--trust-file",
        action="store_true",
        help="read --from-file .pt/.pickle files in full: a pickle can run code, so only for "
        "files from a source you trust (by default only tensors, arrays and dicts or lists of "
        "them are read)",
    )

    convert = commands.add_parser("convert", help="convert another layout to atomic files")
    layouts = convert.add_subparsers(dest="layout", required=True)
    lcrec = layouts.add_parser("lcrec", help="X.inter.json + X.item.json of LC-Rec")
    alphafuse = layouts.add_parser(
        "alphafuse",
        help="AlphaFuse / DreamRec / PreferDiff pickled DataFrames -> pre-split dataset",
        description="Convert train_data.df, val_data.df, test_data.df, data_statis.df and "
        "<model>_emb.pickle into NAME.{train,valid,test}.inter (one example a row), NAME.yaml "
        "and NAME.itememb. These files are pickles, which can run code when read: convert only "
        "files from a source you trust.",
    )
    amazon = layouts.add_parser(
        "amazon",
        help="raw Amazon review + metadata JSON lines (.gz or plain) -> k-core .inter/.item",
    )
    for layout in (lcrec, alphafuse):
        layout.add_argument("--input", required=True, help="folder of the source files")
    alphafuse.add_argument(
        "--embeddings", default=None, help="item vector file (default: the one *_emb.pickle)"
    )
    amazon.add_argument("--reviews", required=True, help="reviews file (reviewerID, asin, ...)")
    amazon.add_argument("--meta", required=True, help="metadata file (asin, title, ...)")
    amazon.add_argument(
        "--kcore", type=int, default=5, help="fewest interactions per user and item (default 5)"
    )
    for layout in (lcrec, alphafuse, amazon):
        layout.add_argument("--dataset", required=True, help="name of the dataset to write")
        layout.add_argument("--data-path", default="dataset", help="folder holding datasets")

    split = commands.add_parser(
        "split",
        help="write a pre-split protocol dataset (NAME-cold)",
        description="cold-start: split the users of NAME 80/10/10 with no overlap into "
        "dataset/NAME-cold (one (history, next item) example per validation/test user, every "
        "example of the training users), with the item text and vectors; then "
        "`python run_recbole.py --model=M --dataset=NAME-cold` runs the cold-start protocol.",
    )
    split.add_argument("protocol", choices=["cold-start"])
    split.add_argument("--dataset", required=True, help="source dataset name")
    split.add_argument("--data-path", default="dataset", help="folder holding dataset folders")
    split.add_argument(
        "--ratios", default="0.8,0.1,0.1", help="train,valid,test shares of the users"
    )
    split.add_argument("--max-history", type=int, default=10, help="longest history per example")
    split.add_argument("--seed", type=int, default=2020, help="seed of the user shuffle")
    split.add_argument("--output", default=None, help="name of the new dataset (default NAME-cold)")

    export = commands.add_parser(
        "export",
        help="write a dataset as RecBole splits it in another layout",
        description="alphafuse: the AlphaFuse / DreamRec pickled DataFrames (train_data.df, "
        "val_data.df, test_data.df, data_statis.df, <name>_emb.pickle, item_tokens.txt) of "
        "exactly the examples RecBole trains, validates and tests the plugin's models on; "
        "the inverse of `convert alphafuse`.",
    )
    export.add_argument("layout", choices=["alphafuse"])
    export.add_argument("--dataset", required=True, help="dataset name (folder under --data-path)")
    export.add_argument("--data-path", default="dataset", help="folder holding dataset folders")
    export.add_argument("--output", required=True, help="folder to write (must not exist)")
    export.add_argument(
        "--embedding-name",
        default="language",
        help="the vectors go to NAME_emb.pickle (the authors' --language_model_type)",
    )
    export.add_argument(
        "--max-history",
        type=int,
        default=None,
        help="seq_size (default: the dataset's MAX_ITEM_LIST_LENGTH)",
    )
    return parser


def _ratios(text):
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise AlphaFuseError(f"--ratios must look like 0.8,0.1,0.1, got '{text}'.") from None


def _convert(args):
    if args.layout == "lcrec":
        convert_lcrec(args.input, args.data_path, args.dataset)
    elif args.layout == "alphafuse":
        convert_alphafuse(args.input, args.data_path, args.dataset, args.embeddings)
    else:
        convert_amazon(args.reviews, args.meta, args.data_path, args.dataset, args.kcore)


def _check_from_file_options(args):
    if not args.from_file:
        given = "--ids names the rows of" if args.ids else "--trust-file is about"
        raise AlphaFuseError(f"{given} --from-file FILE: pass both.")
    encoder_options = [
        option for option, value in (("--fields", args.fields), ("--lm", args.lm)) if value
    ]
    if encoder_options:
        raise AlphaFuseError(
            f"{encoder_options} choose how text is encoded; --from-file takes finished vectors: "
            "leave them out."
        )


TRAINING_COMMANDS = {
    "run": run_command,
    "tune": tune_command,
    "config": config_command,
    "benchmark": benchmark_command,
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAINING_COMMANDS:
        prog = f"python -m recbole_alphafuse {argv[0]}"
        # RecBole's Config reads the --key=value settings from sys.argv: leave it the flags only.
        sys.argv = [prog, *argv[1:]]
        return TRAINING_COMMANDS[argv[0]](argv[1:], prog=prog)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_path = Path(args.data_path) / args.dataset
    try:
        if args.command == "convert":
            _convert(args)
            return
        if args.command == "export":
            export_alphafuse(
                args.dataset, args.output, args.data_path, args.embedding_name, args.max_history
            )
            return
        if args.command == "split":
            copy_bundled_dataset(args.dataset, data_path)
            split_cold_start(
                args.data_path,
                args.dataset,
                ratios=_ratios(args.ratios),
                max_history=args.max_history,
                seed=args.seed,
                target_name=args.output,
            )
            return
        copy_bundled_dataset(args.dataset, data_path)
        if args.from_file or args.ids or args.trust_file:
            _check_from_file_options(args)
            embed_from_file(
                data_path,
                args.dataset,
                args.from_file,
                args.ids,
                args.item_field,
                trust=args.trust_file,
            )
            return
        embed_dataset(
            data_path,
            args.dataset,
            fields=args.fields.split(",") if args.fields else None,
            model_path=args.lm,
            batch_size=args.batch_size,
            device=args.device,
            item_field=args.item_field,
            chunk_size=args.chunk_size,
        )
    except AlphaFuseError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
