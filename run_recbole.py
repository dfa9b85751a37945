"""Train and test a model: ``python run_recbole.py --model=AlphaFuseSASRec --dataset=ml-100k``.

Same flags as RecBole's run_recbole.py (``--model``, ``--dataset``, ``--config_files``, any
``--key=value``, ``--nproc`` ...); ``python -m recbole_alphafuse run`` is the same command.
"""

from recbole_alphafuse.commands import run_command

if __name__ == "__main__":
    run_command()
