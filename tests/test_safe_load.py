"""Checkpoints and vector files are read without running code from them, unless trusted."""

import builtins
import json
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import FAST_CONFIG, SLICE
from test_end_to_end import fast_config_file, run_script

from recbole_alphafuse.__main__ import main
from recbole_alphafuse.quick_start import load_data_and_model, run
from recbole_alphafuse.safe_load import UntrustedFileError, load_array_pickle, load_checkpoint


class CreatesMarker:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


# The name pickle records for builtins.open: io.open up to Python 3.12, _io.open from 3.13.
HELD_CALLABLE = f"{builtins.open.__module__}.{builtins.open.__name__}"


def crafted_checkpoint(folder):
    """A file shaped like a RecBole checkpoint whose config would create ``marker`` on load."""
    marker = folder / "marker"
    path = folder / "crafted.pth"
    state = {"config": CreatesMarker(marker), "epoch": 0, "state_dict": {"w": torch.ones(2)}}
    torch.save(state, path, pickle_protocol=4)
    return path, marker


def test_the_crafted_checkpoint_runs_code_when_trusted(tmp_path):
    path, marker = crafted_checkpoint(tmp_path)
    load_checkpoint(path, trust=True)
    assert marker.exists()


def test_load_data_and_model_refuses_a_checkpoint_that_would_run_code(tmp_path):
    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(UntrustedFileError, match=f"holds {re.escape(HELD_CALLABLE)}") as refused:
        load_data_and_model(path)
    assert "trust_checkpoint=True" in str(refused.value)
    assert "--trust_checkpoint" in str(refused.value)
    assert not marker.exists()


def test_resume_from_a_crafted_checkpoint_is_one_error_before_any_data_work(slice_root, workdir):
    path, marker = crafted_checkpoint(workdir)
    result = run_script(
        "run_recbole.py",
        [
            "--model=AlphaFuseSASRec",
            f"--dataset={SLICE}",
            f"--config_files={fast_config_file(workdir, slice_root)}",
            f"--resume_from={path}",
        ],
        workdir,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and f"holds {HELD_CALLABLE}" in lines[-1]
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (workdir / "log").exists()


def test_a_missing_resume_file_is_named(slice_root, workdir):
    config = {**FAST_CONFIG, "data_path": str(slice_root), "resume_from": "absent.pth"}
    with pytest.raises(Exception, match="resume_from: absent.pth not found"):
        run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config)


RELOAD = """
import json, sys
from recbole_alphafuse.quick_start import load_data_and_model
from recbole_alphafuse.registry import get_trainer
config, model, _, _, _, test_data = load_data_and_model(sys.argv[1])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
print(json.dumps(dict(trainer.evaluate(test_data, load_best_model=False))))
"""


@pytest.mark.parametrize("model", ["AlphaFuseSASRec", "SASRec", "AlphaFusePreferDiff"])
def test_checkpoints_reload_safely_to_the_same_metrics_in_a_fresh_process(
    model, slice_root, workdir
):
    config = {
        **FAST_CONFIG,
        "data_path": str(slice_root),
        "checkpoint_dir": str(workdir / "saved"),
        "null_thres": None,
    }
    result = run(model=model, dataset=SLICE, config_dict=config)
    # Plain floats: numpy 2 would print its scalars as np.float64(...).
    assert all(type(value) is float for value in result["test_result"].values())
    reload = subprocess.run(
        [sys.executable, "-c", RELOAD, result["model_file"]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reload.returncode == 0, reload.stderr[-3000:]
    assert json.loads(reload.stdout.strip().splitlines()[-1]) == dict(result["test_result"])


@pytest.mark.parametrize("suffix", [".pt", ".pickle"])
def test_embed_from_file_refuses_a_vector_file_that_would_run_code(tmp_path, suffix):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.inter").write_text("user_id:token\titem_id:token\nu\ta\n")
    marker = tmp_path / "marker"
    vectors = tmp_path / f"v{suffix}"
    payload = {"a": CreatesMarker(marker)}
    if suffix == ".pt":
        torch.save(payload, vectors)
    else:
        vectors.write_bytes(pickle.dumps(payload))
    with pytest.raises(SystemExit, match=f"holds {re.escape(HELD_CALLABLE)}.*--trust-file"):
        main(
            [
                "embed",
                "--dataset",
                "tiny",
                "--data-path",
                str(tmp_path),
                "--from-file",
                str(vectors),
            ]
        )
    assert not marker.exists()
    assert not (folder / "tiny.itememb").exists()


def test_trust_file_without_a_vector_file_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="--trust-file is about --from-file"):
        main(["embed", "--dataset", "tiny", "--data-path", str(tmp_path), "--trust-file"])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_arrays_and_tensors_pickled_with_any_protocol_load_safely(tmp_path, protocol):
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": torch.ones(2), "c": 1.5}
    path = tmp_path / "v.pickle"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = load_array_pickle(path, "--trust-file")
    assert np.array_equal(loaded["a"], value["a"]) and loaded["a"].dtype == np.float32
    assert torch.equal(loaded["b"], value["b"]) and loaded["c"] == 1.5
