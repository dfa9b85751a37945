"""The plugin as users install and use it: numpy aliases RecBole 1.2.1 needs, the package's own
command line, a checkpoint reloaded in a new process, and a wheel installed into a fresh
virtual environment."""

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FAST_CONFIG, SLICE

from recbole_alphafuse.compat import NUMPY_ALIASES

REPO = Path(__file__).resolve().parent.parent


def python(code, cwd, executable=sys.executable):
    return subprocess.run(
        [executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_numpy_aliases_are_restored_by_any_plugin_import(tmp_path):
    # A new process: import one plugin module, nothing else, then construct RecBole's Config
    # (its compatibility code reads np.float_, removed in numpy 2).
    result = python(
        "import numpy as np\n"
        "import recbole_alphafuse.data.atomic\n"
        f"missing = [n for n in {sorted(NUMPY_ALIASES)!r} if not hasattr(np, n)]\n"
        "from recbole.config import Config\n"
        "Config(model='Pop', dataset='ml-100k', config_dict={'show_progress': False})\n"
        "print('missing', missing, np.float is np.float64)\n",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "missing [] True" in result.stdout
    # Names numpy still has keep numpy's own meaning.
    assert np.float64 is NUMPY_ALIASES["float_"] and np.bool_ is NUMPY_ALIASES["bool"]


def test_module_command_trains_and_a_new_process_reloads_it(slice_root, tmp_path):
    config_file = tmp_path / "fast.yaml"
    config_file.write_text(yaml.safe_dump({**FAST_CONFIG, "data_path": str(slice_root)}))
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "recbole_alphafuse",
            "run",
            "--model=AlphaFuseSASRec",
            f"--dataset={SLICE}",
            f"--config_files={config_file}",
            "--seed=5",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    log = trained.stdout + trained.stderr
    assert "test result" in log and "seed = 5" in log
    assert "will not be used in RecBole" not in log
    # RecBole's own deprecation warnings on today's torch and pandas are silenced.
    assert "FutureWarning" not in log and "pkg_resources" not in log
    (checkpoint,) = (tmp_path / "saved").glob("AlphaFuseSASRec-*.pth")

    reloaded = python(
        "import json\n"
        "from recbole_alphafuse.quick_start import load_data_and_model\n"
        "from recbole_alphafuse.registry import get_trainer\n"
        f"config, model, _, _, _, test = load_data_and_model({str(checkpoint)!r})\n"
        "trainer = get_trainer(config['MODEL_TYPE'], config['model'])(config, model)\n"
        "print(json.dumps(dict(trainer.evaluate(test, load_best_model=False))))\n",
        tmp_path,
    )
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]
    metrics = json.loads(reloaded.stdout.strip().splitlines()[-1])
    # OrderedDict([('ndcg@10', 0.1)]) before Python 3.12, OrderedDict({'ndcg@10': np.float64(0.1)})
    # with numpy 2 on 3.12+.
    tested = re.search(r"test result: .*'ndcg@10'[,:] (?:np\.float64\()?([0-9.]+)", log)
    assert metrics["ndcg@10"] == pytest.approx(float(tested.group(1)), abs=1e-4)


def test_wheel_carries_the_defaults_into_a_fresh_environment(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("recbole_alphafuse-*.whl")
    # A fresh environment that borrows the libraries (RecBole, torch ...) of this one through a
    # .pth file (whose directories' own .pth files, such as an editable install's, are not read);
    # the plugin itself comes from the wheel only.
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    executable = str(environment / "bin" / "python")
    purelib = python(
        "import sysconfig; print(sysconfig.get_paths()['purelib'])", tmp_path, executable
    )
    borrowed = [path for path in sys.path if path.endswith("site-packages")]
    Path(purelib.stdout.strip(), "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    installed = subprocess.run(
        [executable, "-m", "pip", "install", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = python(
        "import recbole_alphafuse\n"
        "from recbole_alphafuse.config import Config\n"
        "config = Config(model='AlphaFuseSASRec', dataset='ml-100k')\n"
        "print(recbole_alphafuse.__file__)\n"
        "print(recbole_alphafuse.PROPERTIES_DIR)\n"
        "print(config['null_dim'], config['language_scale'], config['encoder'])\n",
        outside,
        executable,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module_file, properties, values = result.stdout.strip().splitlines()[-3:]
    assert module_file.startswith(str(environment))
    assert properties.startswith(str(environment)) and Path(properties, "overall.yaml").is_file()
    assert values == "32 40.0 recbole"
