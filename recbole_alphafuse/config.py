"""RecBole's Config, taught about the plugin's models and today's library stack."""

import os
from pathlib import Path

import recbole
import torch
import yaml
from recbole.config import Config as RecBoleConfig
from recbole.utils import InputType, ModelType

from recbole_alphafuse import PROPERTIES_DIR, AlphaFuseError
from recbole_alphafuse.data.itememb import (
    ITEMEMB_ID_FIELD,
    ITEMEMB_SUFFIX,
    ITEMEMB_VECTOR_FIELD,
    uses_language_embeddings,
)
from recbole_alphafuse.model.loss import AUTO_LOSS
from recbole_alphafuse.registry import get_model

# Losses computed over the full item table or over negatives the model samples itself.
POINTWISE_LOSSES = ("CE", "InfoNCE", "SampledSoftmax", "gBCE", AUTO_LOSS)


def default_files(model_class):
    """The yaml defaults of a model, most general first.

    For each base class (most basic first): RecBole's ``properties/model/<Base>.yaml`` (a model
    built on a RecBole model inherits its defaults) or the plugin's
    ``properties/backbone/<Base>.yaml``; then the strategy's
    ``properties/item_embedding/<Strategy>.yaml``; last ``properties/model/<Model>.yaml``.
    """
    recbole_properties = Path(recbole.__file__).resolve().parent / "properties" / "model"
    candidates = []
    for base in reversed(model_class.__mro__[1:]):
        if base.__module__.startswith("recbole.model."):
            candidates.append(recbole_properties / f"{base.__name__}.yaml")
        candidates.append(PROPERTIES_DIR / "backbone" / f"{base.__name__}.yaml")
    strategy = getattr(model_class, "item_embedding_class", None)
    if strategy is not None:
        candidates.append(PROPERTIES_DIR / "item_embedding" / f"{strategy.__name__}.yaml")
    candidates.append(PROPERTIES_DIR / "model" / f"{model_class.__name__}.yaml")
    return [path for path in candidates if path.is_file()]


def _readable_source(source):
    """A yaml path as the package it belongs to, e.g. ``RecBole properties/overall.yaml``."""
    if source in ("config dict", "command line"):
        return source
    path = Path(source).resolve()
    for owner, root in (
        ("RecBole", Path(recbole.__file__).resolve().parent),
        ("plugin", PROPERTIES_DIR.parent),
    ):
        if path.is_relative_to(root):
            return f"{owner} {path.relative_to(root)}"
    return str(source)


class Config(RecBoleConfig):
    """RecBole's Config with the plugin's model registry and defaults.

    On top of RecBole's behaviour:

    - ``model`` resolves plugin models as well as RecBole's, and the plugin's yaml defaults
      (:func:`default_files`, then the dataset
      folder's own ``<data_path>/<dataset>/<dataset>.yaml``, e.g. the benchmark-file settings
      that ``split`` writes) are merged after RecBole's own, below the user's settings;
    - ``ml-100k`` is read from ``<data_path>/ml-100k`` (prepared there from RecBole's bundled copy)
      instead of RecBole's package folder, so its language embeddings can live beside it;
    - models that use language embeddings get the ``.itememb`` loading keys
      (``additional_feat_suffix``, ``load_col``, ``alias_of_item_id``, ``preload_weight``) added;
    - sequential models trained with CE or InfoNCE get ``train_neg_sample_args: ~`` unless the user
      set it, as RecBole 1.2.1 refuses CE with the default negative sampling;
    - the plugin's sequential models, which read no history but the items', get ``unused_col``
      naming the other history lists RecBole's augmentation builds (``timestamp_list``,
      ``rating_list``: one ``[rows x MAX_ITEM_LIST_LENGTH]`` tensor each), unless a setting
      names ``unused_col``; RecBole then drops them before the split copies its rows;
    - ``encoder: reference`` trains ``train_positions: last`` unless the user set
      ``train_positions`` (its default, ``all``, needs ``encoder: recbole``);
    - a distributed process (``local_rank`` set, see :func:`recbole_alphafuse.quick_start.run`)
      joins its process group over gloo on the CPU where there is no GPU for every process
      (RecBole only knows NCCL, one GPU per process).
    """

    def _load_config_files(self, file_list):
        for file in file_list or []:
            with open(file, encoding="utf-8") as f:
                self._record_sources(yaml.load(f.read(), Loader=self.yaml_loader), file, True)
        return super()._load_config_files(file_list)

    def _load_variable_config_dict(self, config_dict):
        self._record_sources(config_dict, "config dict", True)
        return super()._load_variable_config_dict(config_dict)

    def _load_cmd_line(self):
        loaded = super()._load_cmd_line()
        self._record_sources(loaded, "command line", True)
        return loaded

    def _update_internal_config_dict(self, file):
        loaded = super()._update_internal_config_dict(file)
        self._record_sources(loaded, file, False)
        return loaded

    def _record_sources(self, settings, source, external):
        # Written before RecBole sets final_config_dict, whose absence its __getattr__ reports.
        sources = self.__dict__.setdefault("_sources", ({}, {}))
        source = _readable_source(source)
        sources[0 if external else 1].update(
            {key: (source, value) for key, value in (settings or {}).items()}
        )

    def setting_sources(self):
        """``{key: where its value came from}``: your flags, dict and files over the yaml defaults
        (the last file that sets a key wins). A value RecBole or the plugin changed after reading
        it says so; keys no file set were derived."""
        external, internal = self.__dict__.get("_sources", ({}, {}))
        sources = {}
        for key, value in self.final_config_dict.items():
            source, read = external.get(key) or internal.get(key) or ("derived", value)
            sources[key] = source if read == value else f"{source}, then adjusted"
        return sources

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        if not PROPERTIES_DIR.is_dir():
            raise AlphaFuseError(
                f"the plugin's yaml defaults are missing ({PROPERTIES_DIR}): reinstall the "
                "plugin (`pip install .` from its repository, or its wheel)."
            )
        for path in [PROPERTIES_DIR / "overall.yaml", *default_files(model_class)]:
            self._update_internal_config_dict(str(path))
        data_root = self.external_config_dict.get(
            "data_path", self.internal_config_dict["data_path"]
        )
        dataset_file = Path(data_root) / dataset / f"{dataset}.yaml"
        if dataset_file.is_file():
            loaded = self._update_internal_config_dict(str(dataset_file)) or {}
            self.parameters["Dataset"] += [k for k in loaded if k not in self.parameters["Dataset"]]

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        if (
            final["MODEL_TYPE"] == ModelType.SEQUENTIAL
            and final.get("loss_type") in POINTWISE_LOSSES
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            final["train_neg_sample_args"] = None
        if (
            final.get("encoder") == "reference"
            and final.get("train_positions") == "all"
            and "train_positions" not in self.external_config_dict
        ):
            # The default trains windows, which the reference encoder cannot (it numbers
            # positions from the newest item): it trains RecBole's rows instead.
            final["train_positions"] = "last"
        return final

    def _set_default_parameters(self):
        data_root = self.final_config_dict["data_path"]
        super()._set_default_parameters()
        final = self.final_config_dict
        final["data_path"] = os.path.join(data_root, self.dataset)
        if final.get("loss_type") in POINTWISE_LOSSES[1:] and not hasattr(
            self.model_class, "input_type"
        ):
            final["MODEL_INPUT_TYPE"] = InputType.POINTWISE
        if uses_language_embeddings(self.model_class):
            self._add_itememb_loading()
        self._drop_unread_history_lists()

    def _drop_unread_history_lists(self):
        # At 10^6 interactions a timestamp list is 0.4 GB in the augmented dataset and again in
        # each copy the split makes of it. Only known columns (``load_col``) can be named:
        # RecBole refuses an ``unused_col`` field that is not loaded.
        final = self.final_config_dict
        inter_columns = (final.get("load_col") or {}).get("inter")
        if (
            final["MODEL_TYPE"] != ModelType.SEQUENTIAL
            or not self.model_class.__module__.startswith("recbole_alphafuse.")
            or final.get("unused_col") is not None
            or final.get("benchmark_filename") is not None
            or not isinstance(inter_columns, list)
        ):
            return
        read = {final["USER_ID_FIELD"], final["ITEM_ID_FIELD"]}
        unread = [column + final["LIST_SUFFIX"] for column in inter_columns if column not in read]
        if unread:
            final["unused_col"] = {"inter": unread}

    def _add_itememb_loading(self):
        final = self.final_config_dict
        if isinstance(final.get("load_col"), dict):
            final["load_col"] = {
                **final["load_col"],
                ITEMEMB_SUFFIX: [ITEMEMB_ID_FIELD, ITEMEMB_VECTOR_FIELD],
            }
        for key, value in (
            ("additional_feat_suffix", ITEMEMB_SUFFIX),
            ("alias_of_item_id", ITEMEMB_ID_FIELD),
        ):
            values = list(final.get(key) or [])
            if value not in values:
                values.append(value)
            final[key] = values
        final["preload_weight"] = {
            **(final.get("preload_weight") or {}),
            ITEMEMB_ID_FIELD: ITEMEMB_VECTOR_FIELD,
        }

    def _init_device(self):
        final = self.final_config_dict
        if "local_rank" not in final:
            return super()._init_device()
        gpu_id = final["gpu_id"]
        gpu_id = ",".join(map(str, gpu_id)) if isinstance(gpu_id, tuple) else str(gpu_id)
        gpus = [g for g in gpu_id.split(",") if g.strip()]
        if gpus and torch.cuda.is_available():
            if len(gpus) < final["nproc"]:
                raise AlphaFuseError(
                    f"nproc={final['nproc']} processes need as many GPUs in gpu_id, got "
                    f"gpu_id='{gpu_id}': list one GPU per process (e.g. gpu_id='0,1') or set "
                    "gpu_id='' to train on CPU processes."
                )
            return super()._init_device()
        final["gpu_id"] = gpu_id
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id
        torch.distributed.init_process_group(
            backend="gloo",
            rank=final["local_rank"] + final["offset"],
            world_size=final["world_size"],
            init_method=f"tcp://{final['ip']}:{final['port']}",
        )
        final["device"] = torch.device("cpu")
        final["single_spec"] = False
        if final["local_rank"] != 0:
            # As RecBole does for its other processes: only errors, no progress bars.
            final["state"] = "error"
            final["show_progress"] = False
            final["verbose"] = False
