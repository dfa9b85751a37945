"""The fair benchmark (``python -m recbole_alphafuse benchmark``), by responsibility:

- :mod:`~recbole_alphafuse.benchmark.training`: one training and its test, in a worker;
- :mod:`~recbole_alphafuse.benchmark.study`: one model's search and selection on one dataset;
- :mod:`~recbole_alphafuse.benchmark.storage`: the CSV of runs, the test ranks and the folders of
  the trainings in flight;
- :mod:`~recbole_alphafuse.benchmark.pools`: where the trainings run (processes here, or Ray);
- :mod:`~recbole_alphafuse.benchmark.report`: the table, the paired differences and the plot;
- :mod:`~recbole_alphafuse.benchmark.run`: the whole benchmark, studies to table;
- :mod:`~recbole_alphafuse.benchmark.command`: its command line.
"""
