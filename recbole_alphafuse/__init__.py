"""recbole-alphafuse: AlphaFuse (SIGIR 2025) and its baselines as RecBole models.

Entry points: :mod:`recbole_alphafuse.quick_start` (``run``, ``objective_function``,
``load_data_and_model``), the CLIs ``run_recbole.py`` / ``run_hyper.py`` and
``python -m recbole_alphafuse run|tune|embed|convert|split``.
"""

from pathlib import Path

# Before anything imports RecBole: what RecBole 1.2.1 needs from today's numpy.
from recbole_alphafuse import compat  # noqa: F401

__version__ = "0.1.0"


def _properties_dir():
    """The yaml defaults: installed inside the package, or the repository's properties/ folder
    beside it (editable install)."""
    package = Path(__file__).resolve().parent
    installed = package / "properties"
    return installed if installed.is_dir() else package.parent / "properties"


PROPERTIES_DIR = _properties_dir()


class AlphaFuseError(ValueError):
    """Bad input found before expensive work starts; the message names what is wrong and the fix."""
