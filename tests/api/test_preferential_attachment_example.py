"""examples/preferential_attachment.py, the docs' worked example of a user's regrowth rule: its scores are
deg(u)·deg(v) on absent links, it is at most 15 lines, and it trains on digits from a user's script and from the
command line (``--plugin``)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsenet.evolution import METHODS, REGROWTHS, select_absent
from sparsenet.sparse import SparseLinear, linear_keys

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "preferential_attachment.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("preferential_attachment", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    REGROWTHS.pop("preferential_attachment")
    METHODS.pop("pa")


def test_the_rule_scores_absent_links_by_the_product_of_degrees(example):
    layer = SparseLinear(9, 7, density=0.3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dense = torch.zeros(7 * 9, dtype=torch.float64)
    for keys, scores in example.preferential_attachment(layer, memory_budget=8 * 9 * 2):  # blocks of 2 rows
        dense[keys] = scores
    adjacency = layer.to_dense() != 0
    expected = adjacency.sum(1, keepdim=True).double() * adjacency.sum(0, keepdim=True).double()
    expected[adjacency] = 0.0
    assert torch.equal(dense.view(7, 9), expected)
    present = linear_keys(layer.indices, 9)
    chosen = select_absent(example.preferential_attachment(layer, memory_budget=8 * 9 * 2), 5, False, present, 63,
                           torch.Generator().manual_seed(0))
    assert bool((expected.flatten()[chosen] >= expected.flatten().topk(5).values.min()).all())


def test_the_rule_and_its_registration_take_at_most_15_lines():
    text = EXAMPLE.read_text()
    body = text[text.index("def preferential_attachment"):text.index("\n\n\ndef train_digits")]
    assert len([line for line in body.splitlines() if line.strip()]) <= 15


def test_a_user_script_trains_digits_with_it(example):
    assert example.train_digits(epochs=5) > 0.85  # 0.947 at seed 0


def test_the_cli_trains_digits_with_it(tmp_path):
    result = subprocess.run([sys.executable, "cli.py", "train", "--plugin", str(EXAMPLE), "--method", "pa",
                             "--epochs", "3", "--out_dir", str(tmp_path), "--wandb", "off"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["method"] == "pa" and summary["links"] > 0
    first = json.loads(Path(summary["run_dir"], "metrics.jsonl").read_text().splitlines()[0])
    assert first["regrown"] == first["removed"] > 0
