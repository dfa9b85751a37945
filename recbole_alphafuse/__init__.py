"""recbole-alphafuse: AlphaFuse (SIGIR 2025) and its baselines as RecBole models.

Entry points: :mod:`recbole_alphafuse.quick_start` (``run``, ``objective_function``,
``load_data_and_model``), the CLIs ``run_recbole.py`` / ``run_hyper.py`` and
``python -m recbole_alphafuse embed``.
"""

from pathlib import Path

__version__ = "0.1.0"

# The repository's properties/ folder holds the yaml defaults of the plugin's models and datasets.
PROPERTIES_DIR = Path(__file__).resolve().parent.parent / "properties"


class AlphaFuseError(ValueError):
    """Bad input found before expensive work starts; the message names what is wrong and the fix."""
