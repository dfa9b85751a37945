"""RecBole's Config, taught about the plugin's models and today's library stack."""

import os

from recbole.config import Config as RecBoleConfig
from recbole.utils import InputType, ModelType

from recbole_alphafuse import PROPERTIES_DIR, AlphaFuseError
from recbole_alphafuse.utils import get_model

# Where language vectors enter RecBole: the NAME.itememb atomic file, read as a preloaded weight.
ITEMEMB_SUFFIX = "itememb"
ITEMEMB_ID_FIELD = "iid"
ITEMEMB_VECTOR_FIELD = "item_emb"

# Losses computed over the full item table or over negatives the model samples itself.
POINTWISE_LOSSES = ("CE", "InfoNCE")


class Config(RecBoleConfig):
    """RecBole's Config with the plugin's model registry and defaults.

    On top of RecBole's behaviour:

    - ``model`` resolves plugin models as well as RecBole's, and
      ``properties/model/<model>.yaml`` / ``properties/dataset/<dataset>.yaml`` of the plugin are
      merged after RecBole's own defaults;
    - ``ml-100k`` is read from ``<data_path>/ml-100k`` (prepared there from RecBole's bundled copy)
      instead of RecBole's package folder, so its language embeddings can live beside it;
    - models that use language embeddings get the ``.itememb`` loading keys
      (``additional_feat_suffix``, ``load_col``, ``alias_of_item_id``, ``preload_weight``) added;
    - sequential models trained with CE or InfoNCE get ``train_neg_sample_args: ~`` unless the user
      set it, as RecBole 1.2.1 refuses CE with the default negative sampling.
    """

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
                f"the plugin's yaml defaults are missing ({PROPERTIES_DIR}): install it from a "
                "clone of the repository with `pip install -e .`."
            )
        for kind, name in (("model", model), ("dataset", dataset)):
            path = PROPERTIES_DIR / kind / f"{name}.yaml"
            if path.is_file():
                loaded = self._update_internal_config_dict(str(path)) or {}
                if kind == "dataset":
                    self.parameters["Dataset"] += [
                        key for key in loaded if key not in self.parameters["Dataset"]
                    ]

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        if (
            final["MODEL_TYPE"] == ModelType.SEQUENTIAL
            and final.get("loss_type") in POINTWISE_LOSSES
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            final["train_neg_sample_args"] = None
        return final

    def _set_default_parameters(self):
        data_root = self.final_config_dict["data_path"]
        super()._set_default_parameters()
        final = self.final_config_dict
        final["data_path"] = os.path.join(data_root, self.dataset)
        if final.get("loss_type") == "InfoNCE" and not hasattr(self.model_class, "input_type"):
            final["MODEL_INPUT_TYPE"] = InputType.POINTWISE
        if getattr(self.model_class, "uses_language_embeddings", False):
            self._add_itememb_loading()

    def _add_itememb_loading(self):
        final = self.final_config_dict
        if isinstance(final.get("load_col"), dict):
            final["load_col"] = {
                **final["load_col"],
                ITEMEMB_SUFFIX: [ITEMEMB_ID_FIELD, ITEMEMB_VECTOR_FIELD],
            }
        suffixes = list(final.get("additional_feat_suffix") or [])
        final["additional_feat_suffix"] = suffixes + [ITEMEMB_SUFFIX] * (
            ITEMEMB_SUFFIX not in suffixes
        )
        aliases = list(final.get("alias_of_item_id") or [])
        final["alias_of_item_id"] = aliases + [ITEMEMB_ID_FIELD] * (
            ITEMEMB_ID_FIELD not in aliases
        )
        final["preload_weight"] = {
            **(final.get("preload_weight") or {}),
            ITEMEMB_ID_FIELD: ITEMEMB_VECTOR_FIELD,
        }
