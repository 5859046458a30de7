"""`python cli.py memory`: refuses what it cannot measure with one line, before any work."""
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_one_line():
    result = run_cli("memory", "--model", "transformer", "--dataset", "iwslt14", "--device", "cuda")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: --device cuda: this machine has no CUDA device (or this torch build has no CUDA); use --device cpu "
        "or auto"]


def test_every_listed_sparsity_is_checked():
    result = run_cli("memory", "--model", "mlp", "--sparsity", "0.9", "1.5", "--out", "/nonexistent/never-written")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "1.5" in result.stderr
