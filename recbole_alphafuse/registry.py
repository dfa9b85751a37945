"""Model and trainer lookup: the plugin's registry (and the earlier names of its models) first,
then RecBole's own."""

from functools import cache

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse import model as registered
from recbole_alphafuse.evaluation import GroupMetricsMixin
from recbole_alphafuse.ranking import BlockedRankingMixin
from recbole_alphafuse.trainer import CheckpointMixin, DistributedMixin


def plugin_models():
    """Registered model classes of this plugin, by name."""
    return {name: getattr(registered, name) for name in registered.__all__}


def get_model(model_name):
    """Return the model class named ``model_name``: a plugin model or any RecBole model."""
    models = plugin_models()
    model_name = registered.MODEL_ALIASES.get(model_name, model_name)
    if model_name in models:
        return models[model_name]
    try:
        return recbole_get_model(model_name)
    except (ValueError, ImportError):
        # RecBole's search ends in its exlib models, whose import fails without lightgbm/xgboost.
        raise AlphaFuseError(
            f"Unknown model '{model_name}'. Plugin models: {', '.join(sorted(models))}; "
            "or any RecBole model name (SASRec, GRU4Rec, BERT4Rec, ...). Check --model."
        ) from None


def get_trainer(model_type, model_name):
    """Return RecBole's trainer for the model, able to reload the plugin's own checkpoints, to
    train in CPU or GPU processes alike, to rank large catalogues in bounded memory and to report
    long-tail group metrics."""
    return _trusted_trainer(recbole_get_trainer(model_type, model_name))


@cache
def _trusted_trainer(trainer_class):
    return type(
        trainer_class.__name__,
        (CheckpointMixin, DistributedMixin, GroupMetricsMixin, BlockedRankingMixin, trainer_class),
        {},
    )
