"""The ``sparsenet`` console command: declared as an entry point of the installed package, and the same command
line as ``python cli.py`` (one ``main`` in sparsenet/cli.py), also as ``python -m sparsenet``."""
import importlib.metadata
import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_the_package_declares_the_sparsenet_command():
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="sparsenet")
    assert entry.value == "sparsenet.cli:main"
    assert entry.load().__module__ == "sparsenet.cli"


def test_cli_py_is_the_package_command_line():
    import cli
    import sparsenet.cli
    assert cli.main is sparsenet.cli.main and cli.CLI is sparsenet.cli.CLI


def run(command: list, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([*command, "train", "--epochs", "2", "--out_dir", tmp_path, "--wandb", "off", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def summary(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_python_m_sparsenet_trains_like_cli_py(tmp_path):
    """Outside the checkout (cwd elsewhere), ``python -m sparsenet train`` runs the default digits job and prints
    the same summary as ``python cli.py train`` at the same seed."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    by_module = summary(run([sys.executable, "-m", "sparsenet"], tmp_path / "a"))
    by_script = summary(run([sys.executable, str(ROOT / "cli.py")], tmp_path / "b"))
    assert by_module["best_test_accuracy"] == by_script["best_test_accuracy"]
    assert by_module["links"] == by_script["links"] > 0


@pytest.mark.skipif(shutil.which("sparsenet") is None, reason="the package is not installed with its scripts")
def test_the_sparsenet_command_trains(tmp_path):
    result = summary(run(["sparsenet"], tmp_path))
    assert 0.5 < result["best_test_accuracy"] <= 1.0
    help_text = subprocess.run(["sparsenet", "train", "--help"], capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "--device" in help_text.stdout
