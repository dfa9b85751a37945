"""Make a dataset ready before RecBole loads it: built-in files copied, language vectors built."""

import logging
import os
import shutil
from pathlib import Path

import recbole

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import uses_language_embeddings
from recbole_alphafuse.data.embed import embed_dataset
from recbole_alphafuse.data.itememb import check_itememb_header, itememb_path

logger = logging.getLogger(__name__)

# Datasets that ship inside the recbole wheel; item text = title, year, genres for ml-100k.
BUNDLED_DATASETS = ("ml-100k",)
BUNDLED_SUFFIXES = ("inter", "item", "user")


def bundled_dataset_dir(dataset_name):
    return Path(recbole.__file__).resolve().parent / "dataset_example" / dataset_name


def copy_bundled_dataset(dataset_name, data_path):
    """Copy a dataset shipped with RecBole into ``data_path`` if its .inter file is not there yet.

    Each file is written atomically. Does nothing for datasets RecBole does not ship.
    """
    data_path = Path(data_path)
    if dataset_name not in BUNDLED_DATASETS or (data_path / f"{dataset_name}.inter").is_file():
        return
    data_path.mkdir(parents=True, exist_ok=True)
    source = bundled_dataset_dir(dataset_name)
    for suffix in BUNDLED_SUFFIXES:
        target = data_path / f"{dataset_name}.{suffix}"
        if not target.exists():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(source / target.name, tmp)
            os.replace(tmp, target)
    logger.info(f"prepared {dataset_name} in {data_path} from RecBole's bundled copy")


def prepare_dataset(config):
    """Ensure the atomic files of ``config['dataset']`` exist under ``config['data_path']``.

    Copies a RecBole-bundled dataset on first use and, for models that need them, builds the
    missing ``.itememb`` language embeddings (cached beside the data) with the default encoder.
    """
    name, data_path = config["dataset"], Path(config["data_path"])
    copy_bundled_dataset(name, data_path)
    benchmark = config["benchmark_filename"]
    for part in benchmark or [""]:
        inter = data_path / f"{name}{'.' + part if part else ''}.inter"
        if not inter.is_file():
            raise AlphaFuseError(
                f"{inter} not found: put the RecBole atomic files of '{name}' in {data_path} "
                "or set data_path to the folder that holds the dataset folder."
            )
    if not uses_language_embeddings(config.model_class):
        return
    embeddings = itememb_path(data_path, name)
    if not embeddings.is_file():
        if not (data_path / f"{name}.item").is_file():
            raise AlphaFuseError(
                f"{embeddings} not found and there is no {name}.item with item text to build it "
                f"from: add {name}.item or bring your own vectors as {embeddings.name}."
            )
        logger.info(f"{embeddings} not found: building it from the item text")
        embed_dataset(
            data_path,
            name,
            item_field=config["ITEM_ID_FIELD"],
            show_progress=config["show_progress"],
        )
    check_itememb_header(embeddings)
