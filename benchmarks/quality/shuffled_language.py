"""A control dataset: the same split with every item's language vector given to another item.

    python benchmarks/quality/shuffled_language.py --dataset Office-cold --seed 2020

writes ``dataset/Office-cold-shuffled/``: the dataset's atomic files and yaml under the new name,
with the ``.itememb`` vectors permuted over items along one cycle, so no item keeps its own.
The table of vectors (and so its spectrum, its whitening and AlphaFuse's null space) is the
same; only the link between an item and its text is broken. A model that scores as well on the
control as on the real vectors owes its gain to the magnitudes and shape of the table, not to
what the text says.

Results page: benchmarks/results/text-control.md.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np


def one_cycle(count, seed):
    """A permutation of ``range(count)`` without fixed points: a random order read as one cycle."""
    order = np.random.default_rng(seed).permutation(count)
    permutation = np.empty(count, dtype=np.int64)
    permutation[order] = np.roll(order, -1)
    return permutation


def shuffled_itememb(source, seed):
    """The text of the ``.itememb`` file ``source`` with each row's vector moved to another row."""
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    vector_columns = [
        i for i, field in enumerate(header.split("\t")) if field.endswith(":float_seq")
    ]
    if len(vector_columns) != 1:
        raise SystemExit(f"error: {source} needs exactly one float_seq column, found {header!r}")
    (column,) = vector_columns
    fields = [row.split("\t") for row in rows if row]
    if len(fields) < 2:
        raise SystemExit(f"error: {source} has fewer than two items: nothing to shuffle")
    vectors = [row[column] for row in fields]
    for row, source_row in zip(fields, one_cycle(len(fields), seed)):
        row[column] = vectors[source_row]
    return "\n".join([header, *("\t".join(row) for row in fields)]) + "\n"


def write_control(data_path, dataset, seed):
    """Write ``DATASET-shuffled`` beside ``dataset`` in ``data_path``; return its folder."""
    source = Path(data_path) / dataset
    itememb = source / f"{dataset}.itememb"
    if not itememb.is_file():
        raise SystemExit(
            f"error: {itememb} not found: run `python -m recbole_alphafuse embed --dataset "
            f"{dataset}` first"
        )
    text = shuffled_itememb(itememb, seed)
    name = f"{dataset}-shuffled"
    target = Path(data_path) / name
    # Built beside the target and renamed at the end, so an interrupted run leaves no half dataset.
    building = Path(data_path) / f".{name}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    try:
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name.startswith(f"{dataset}.") and path != itememb:
                shutil.copyfile(path, building / (name + path.name[len(dataset) :]))
        (building / f"{name}.itememb").write_text(text, encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a dataset with an .itememb file")
    parser.add_argument("--data_path", default="dataset", help="folder holding the dataset")
    parser.add_argument("--seed", type=int, default=2020, help="seed of the permutation")
    args = parser.parse_args()
    print(write_control(args.data_path, args.dataset, args.seed))


if __name__ == "__main__":
    main()
