"""``python cli.py bench`` prints the comparison table with consistent ratio columns."""
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks.layer_speed import time_shares
from benchmarks.timing import cpu_model

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_table_with_all_shapes_and_sparsities():
    result = subprocess.run([sys.executable, "cli.py", "bench", "--repeats", "1", "--warmup", "0", "--profile"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    machine = result.stdout.splitlines()[0]
    assert machine.startswith(f"Machine: {cpu_model()} (") and "threads, torch" in machine
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "×" in line
            and not line.startswith("| out")]
    assert len(rows) == 16
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        dense_ms, sparse_ms, ratio = float(cells[3]), float(cells[5]), float(cells[6].rstrip("×"))
        assert abs(dense_ms / sparse_ms - ratio) <= 0.051 * max(ratio, 1)
        assert float(cells[10]) < float(cells[8])  # sparse MiB below dense MiB at every sparsity >= 0.9
        shares = [float(c.rstrip("%")) for c in cells[12:15]]  # --profile: products, copies, bookkeeping
        assert len(shares) == 3 and abs(sum(shares) - 100) <= 2 and shares[0] > 0


def test_time_shares_are_the_three_parts_non_negative_and_summing_to_one():
    """Structure only: which part is larger is a timing, and timings are not asserted (benchmarks/ reports
    them)."""
    from sparsenet.sparse import SparseLinear
    layer = SparseLinear(512, 256, density=0.05, generator=torch.Generator().manual_seed(0))
    x = torch.randn(256, 512, requires_grad=True)
    shares = time_shares(layer, x, repeats=5, warmup=1)
    assert set(shares) == {"products", "copies", "bookkeeping"} and abs(sum(shares.values()) - 1) < 1e-9
    assert all(share >= 0 for share in shares.values()) and shares["products"] > 0
