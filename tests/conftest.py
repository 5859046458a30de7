"""Fixtures the test folders share: the repository root, the tiny MNIST-format data set, and the CLI run
as a user runs it (a fresh ``python cli.py`` process).

The suite runs on one CPU thread, its subprocesses too (unless a test sets OMP_NUM_THREADS): its tensors are
tiny, and with two threads any other load on a 2-core machine stalls every op for whole scheduler slices
(measured: the engine's many-updates test 163 s against 7 s on one thread)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = ROOT / "tests" / "fixtures"  # mnist/*.gz: 8x8 images, 4 classes (tests/fixtures/make_tiny.py)


def run_cli(*args, cwd=ROOT, env=None, timeout=600) -> subprocess.CompletedProcess:
    """``python cli.py ARGS...`` in ``cwd``: its return code, stdout and stderr as text."""
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    """``cli("train", "--epochs", 1, ...)``: a fresh ``python cli.py`` process (see ``run_cli``)."""
    return run_cli


@pytest.fixture
def tiny_data() -> str:
    """The ``--data_dir`` of the tiny MNIST-format data set (``--dataset mnist``)."""
    return str(TINY_DATA)
