"""Tune a model: ``python run_hyper.py --model=M --dataset=D --params_file=F [--tool=Ray] ...``.

RecBole's HyperTuning (or Ray Tune) through the plugin's objective; ``python -m recbole_alphafuse
tune`` is the same command.
"""

from recbole_alphafuse.commands import tune_command

if __name__ == "__main__":
    tune_command()
