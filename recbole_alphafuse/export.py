"""A dataset, exactly as RecBole splits it for the plugin's models, in the AlphaFuse / DreamRec
layout: the inverse of ``convert alphafuse``, so the authors' scripts can run on the same split.

``python -m recbole_alphafuse export alphafuse --dataset NAME --output DIR`` writes into ``DIR``:

- ``train_data.df``, ``val_data.df``, ``test_data.df``: pickled DataFrames, one row per example
  of RecBole's training / validation / test data (a pre-split dataset's files, or RecBole's own
  leave-one-out split with every training prefix): ``seq`` (the last ``seq_size`` history items,
  padded on the left with the id ``item_num``, newest last), ``len_seq`` (real items in ``seq``)
  and ``next`` (the target);
- ``data_statis.df``: ``seq_size`` (RecBole's ``MAX_ITEM_LIST_LENGTH``) and ``item_num``;
- ``<embedding_name>_emb.pickle``: the language vectors, row i = item i (float32 array);
- ``item_tokens.txt``: line i = the dataset's token of item i.

Item i is RecBole's internal item id i + 1 (RecBole's id 0 is its padding).
"""

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from recbole.data import data_preparation

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.itememb import language_embeddings
from recbole_alphafuse.quick_start import create_dataset

logger = logging.getLogger(__name__)

SPLIT_FILES = ("train_data.df", "val_data.df", "test_data.df")
STATISTICS_FILE = "data_statis.df"
TOKENS_FILE = "item_tokens.txt"
# Any model that reads the .itememb file: the export needs the dataset as such models see it.
LANGUAGE_MODEL = "AlphaFuseSASRec"


def export_alphafuse(
    dataset_name, output_dir, data_root="dataset", embedding_name="language", max_history=None
):
    """Write ``dataset_name`` as RecBole splits it into ``output_dir`` (which must not exist).

    Everything goes to a temporary folder renamed into place, so a failure leaves nothing.
    """
    output = Path(output_dir)
    if output.exists():
        raise AlphaFuseError(f"{output} already exists: remove it or choose another --output.")
    settings = {"data_path": str(data_root), "show_progress": False}
    if max_history is not None:
        settings["MAX_ITEM_LIST_LENGTH"] = int(max_history)
    # RecBole's Config reads --key=value from sys.argv: the export's own flags are not settings.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model=LANGUAGE_MODEL, dataset=dataset_name, config_dict=settings)
    finally:
        sys.argv = argv
    dataset = create_dataset(config)
    splits = data_preparation(config, dataset)
    seq_size = config["MAX_ITEM_LIST_LENGTH"]
    item_num = dataset.item_num - 1
    vectors = language_embeddings(dataset)[1:].numpy()

    tmp = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, split in zip(SPLIT_FILES, splits):
            interactions = split._dataset.inter_feat
            histories = interactions[config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]].numpy()
            lengths = interactions[config["ITEM_LIST_LENGTH_FIELD"]].numpy()
            targets = interactions[config["ITEM_ID_FIELD"]].numpy()
            pd.DataFrame(
                {
                    "seq": [
                        [item_num] * (seq_size - length) + (history[:length] - 1).tolist()
                        for history, length in zip(histories, lengths)
                    ],
                    "len_seq": lengths.astype(int),
                    "next": (targets - 1).astype(int),
                }
            ).to_pickle(tmp / name)
        pd.DataFrame({"seq_size": [seq_size], "item_num": [item_num]}).to_pickle(
            tmp / STATISTICS_FILE
        )
        pd.to_pickle(
            np.ascontiguousarray(vectors, dtype=np.float32), tmp / f"{embedding_name}_emb.pickle"
        )
        tokens = dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num))
        (tmp / TOKENS_FILE).write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        f"{dataset_name}: {', '.join(f'{len(s._dataset)} {n}' for n, s in zip(SPLIT_FILES, splits))}"
        f" examples, {item_num} items, seq_size {seq_size} -> {output}"
    )
    return output
