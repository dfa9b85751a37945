"""Make a dataset ready before RecBole loads it: built-in files copied, language vectors built."""

import logging
import shutil
from pathlib import Path

import recbole

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.atomic import check_atomic_file
from recbole_alphafuse.data.embed import embed_dataset
from recbole_alphafuse.data.itememb import (
    check_itememb_header,
    check_itememb_rows,
    itememb_path,
    uses_language_embeddings,
)
from recbole_alphafuse.files import written_atomically

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
            with open(source / target.name, "rb") as original, written_atomically(target) as f:
                shutil.copyfileobj(original, f)
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
    check_loaded_atomic_files(config)
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
    if _recbole_separators(config) and not uses_itememb_cache(config):
        # With the cache, the rows are checked where they are parsed: once per file content.
        check_itememb_rows(embeddings)


def _recbole_separators(config):
    """Whether the files use RecBole's default separators, which this plugin's checks read."""
    return config["field_separator"] == "\t" and config["seq_separator"] == " "


def uses_itememb_cache(config):
    """Whether the dataset's .itememb file is read through its parsed-matrix cache
    (:mod:`recbole_alphafuse.data.itememb_cache`): for models that use language embeddings, with
    ``itememb_cache: True`` and RecBole's default separators (the ones its parser reads)."""
    return (
        bool(config["itememb_cache"])
        and uses_language_embeddings(config.model_class)
        and _recbole_separators(config)
    )


def _loaded_fields(config, suffix):
    """The fields RecBole will load from ``NAME.<suffix>``: a list, None (all), or False (none)."""
    load_col = config["load_col"]
    if load_col is None:
        return None
    if suffix not in load_col:
        return False
    return None if load_col[suffix] == "*" else list(load_col[suffix])


def check_loaded_atomic_files(config):
    """Check the .inter, .user and .item files RecBole is about to load (see
    :func:`~recbole_alphafuse.data.atomic.check_atomic_file`), so that a malformed file ends in
    one AlphaFuseError naming the line to fix instead of a bare error from inside RecBole."""
    if not _recbole_separators(config):
        return
    name, data_path = config["dataset"], Path(config["data_path"])
    parts = config["benchmark_filename"] or [""]
    files = [
        (data_path / f"{name}{'.' + part if part else ''}.inter", "inter", None) for part in parts
    ]
    files += [
        (data_path / f"{name}.user", "user", config["USER_ID_FIELD"]),
        (data_path / f"{name}.item", "item", config["ITEM_ID_FIELD"]),
    ]
    for path, suffix, unique in files:
        fields = _loaded_fields(config, suffix)
        if fields is not False and path.is_file():
            check_atomic_file(path, fields, unique=unique)
