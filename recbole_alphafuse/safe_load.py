"""Reading pickled files (checkpoints, vector files) without letting them run code.

A pickle names the Python callables that rebuild its objects, and unpickling calls them: a
downloaded checkpoint could name ``os.system``. RecBole checkpoints pickle its Config (and
torch's ``weights_only`` reader cannot read the pickle protocol RecBole saves with), so they are
read here with an unpickler that resolves only an allowlist of names: the classes and rebuild
functions the plugin's and RecBole's checkpoints hold. Any other name stops the load before it
is resolved, with one message naming it and the explicit opt-in.
"""

import io
import pickle
import types

import torch

from recbole_alphafuse import AlphaFuseError

# Each numpy name under both package layouts: numpy 1's ``numpy.core`` and numpy 2's ``numpy._core``.
_NUMPY = {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in (
        ("multiarray", "_reconstruct"),
        ("multiarray", "scalar"),
        ("numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
_NUMPY_DTYPES = {
    ("numpy.dtypes", f"{kind}DType")
    for kind in ("Float64", "Float32", "Int64", "Int32", "UInt32", "Bool", "Bytes", "Str")
}

# What tensors, and dicts and lists of them, are rebuilt from (as torch's weights_only reader).
TENSOR_NAMES = frozenset(
    {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch.storage", "_load_from_bytes"),
        ("collections", "OrderedDict"),
        *((("torch", f"{kind}Storage") for kind in ("Float", "Double", "Long", "Int", "Byte"))),
        *((("torch", dtype) for dtype in ("float32", "float64", "int64", "int32", "uint8"))),
    }
)

# Plain numpy arrays of numbers (pickle protocol 2 writes their bytes through _codecs.encode).
ARRAY_NAMES = frozenset(_NUMPY | _NUMPY_DTYPES)


def _storage_from_bytes(data):
    """A tensor's storage pickled with plain ``pickle``: torch's own rebuild reads it with the full
    pickle; torch's weights-only reader is enough for a storage."""
    return torch.load(io.BytesIO(data), weights_only=True)


# Names resolved to a safe stand-in instead of what they name.
SUBSTITUTES = {("torch.storage", "_load_from_bytes"): _storage_from_bytes}

# A RecBole or plugin checkpoint (best model, or the per-epoch resume state): tensors, the
# optimizer's state, RecBole's Config (its enums, the yaml loader class it keeps, the device) and
# the generators' states (numpy's is an array, python's a tuple).
CHECKPOINT_NAMES = (
    TENSOR_NAMES
    | ARRAY_NAMES
    | {
        ("recbole_alphafuse.config", "Config"),
        ("recbole.config.configurator", "Config"),
        *(
            ("recbole.utils.enum_type", enum)
            for enum in ("ModelType", "InputType", "EvaluatorType", "FeatureType", "FeatureSource")
        ),
        ("yaml.loader", "FullLoader"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
    }
)


# The Config keeps its model class: any RecBole or plugin recommender, referred to by name.
RECOMMENDER_MODULES = ("recbole.model.", "recbole_alphafuse.model.")


def _is_recommender_class(module, name, resolve):
    if not module.startswith(RECOMMENDER_MODULES):
        return False
    from recbole.model.abstract_recommender import AbstractRecommender

    try:
        found = resolve(module, name)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type) and issubclass(found, AbstractRecommender)


class UntrustedFileError(AlphaFuseError):
    """A pickled file names something outside the allowlist of what it should hold."""


def _restricted_pickle_module(path, allowed, opt_in, recommenders=False):
    """A module object for ``torch.load(pickle_module=...)`` / plain use whose unpickler resolves
    only ``allowed`` (module, name) pairs and, with ``recommenders``, recommender classes."""

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            resolve = super().find_class
            if (module, name) in SUBSTITUTES and (module, name) in allowed:
                return SUBSTITUTES[module, name]
            if (module, name) in allowed or (
                recommenders and _is_recommender_class(module, name, resolve)
            ):
                return resolve(module, name)
            raise UntrustedFileError(
                f"{path} holds {module}.{name}, which is not among what this file should hold "
                f"(loading it could run code): refused. Load it only if you trust its source: "
                f"{opt_in}."
            )

    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(
        Unpickler=RestrictedUnpickler, load=load, __name__="restricted_pickle"
    )


CHECKPOINT_OPT_IN = "trust_checkpoint=True in Python, --trust_checkpoint on the command line"


def load_checkpoint(path, device="cpu", trust=False):
    """A RecBole or plugin checkpoint, read with :data:`CHECKPOINT_NAMES` only unless ``trust``."""
    if trust:
        return torch.load(path, map_location=device, weights_only=False)
    restricted = _restricted_pickle_module(
        path, CHECKPOINT_NAMES, CHECKPOINT_OPT_IN, recommenders=True
    )
    return torch.load(path, map_location=device, weights_only=False, pickle_module=restricted)


def load_tensor_file(path, opt_in):
    """A ``.pt`` file of tensors, numpy arrays, and dicts or lists of them."""
    restricted = _restricted_pickle_module(path, TENSOR_NAMES | ARRAY_NAMES, opt_in)
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted)


def load_array_pickle(path, opt_in):
    """A pickle of tensors, numpy arrays, numbers, and dicts or lists of them."""
    with open(path, "rb") as f:
        return _restricted_pickle_module(path, TENSOR_NAMES | ARRAY_NAMES, opt_in).load(f)
