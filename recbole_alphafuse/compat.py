"""RecBole 1.2.1 on today's libraries: what it needs from them, restored before it is imported.

Imported first by the package, so every entry point (a plugin module, a reloaded checkpoint, a
tuner worker, the command line) gets it before RecBole's code runs.
"""

import warnings
from importlib.metadata import PackageNotFoundError, version

import numpy as np

RECBOLE_VERSION = "1.2.1"

# numpy 1.24 and 2.0 removed these aliases. RecBole's Config.__init__ reads np.float_, np.complex_
# and np.unicode_ to set np.float, np.int, ...; a Dataset reloaded from a checkpoint (its Config
# unpickled, never constructed) then needs np.float. Each name gets the value RecBole gives it.
NUMPY_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


def restore_numpy_aliases():
    """Give numpy back the aliases RecBole 1.2.1 uses; names numpy still has are left alone."""
    for name, value in NUMPY_ALIASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                getattr(np, name)
            except AttributeError:
                setattr(np, name, value)


def silence_recbole_deprecations():
    """Hide the deprecation warnings RecBole 1.2.1's own code and its pinned hyperopt raise on
    today's torch, pandas and numpy: a user cannot act on them, and the pins in setup.cfg keep
    them harmless (pandas < 3, setuptools < 81). Warnings raised from the user's own code still
    show."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
    warnings.filterwarnings(
        "ignore", message="pkg_resources is deprecated", category=UserWarning, module=r"hyperopt\."
    )
    # hyperopt 0.2.5 (pinned for RecBole's exhaustive search) sets array shapes, which numpy 2.5
    # deprecates.
    warnings.filterwarnings(
        "ignore",
        message="Setting the shape on a NumPy array",
        category=DeprecationWarning,
        module=r"hyperopt\.",
    )
    # RecBole's Interaction.sort passes torch tensors to np.argsort; numpy 2 reports it from its
    # own module, so the message names it.
    warnings.filterwarnings(
        "ignore", message="__array_wrap__ must accept context", category=DeprecationWarning
    )


def check_recbole():
    """RecBole is installed on its own (see the README's set-up): say how when it is missing."""
    try:
        installed = version("recbole")
    except PackageNotFoundError:
        raise ImportError(
            f"RecBole {RECBOLE_VERSION} is not installed: run "
            f"`pip install --no-deps recbole=={RECBOLE_VERSION}` (the plugin brings RecBole's "
            "other requirements; see the README's set-up)."
        ) from None
    if installed != RECBOLE_VERSION:
        raise ImportError(
            f"recbole-alphafuse is built on RecBole {RECBOLE_VERSION}, found {installed}: run "
            f"`pip install --no-deps recbole=={RECBOLE_VERSION}`."
        )


check_recbole()
restore_numpy_aliases()
silence_recbole_deprecations()
