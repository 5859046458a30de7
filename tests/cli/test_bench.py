"""``python cli.py bench`` prints the comparison table with consistent ratio columns."""
import subprocess
import sys
from pathlib import Path

from benchmarks.layer_speed import op_kind
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



def test_profiled_ops_are_sorted_into_products_copies_and_bookkeeping():
    assert [op_kind(n) for n in ("aten::addmm", "aten::sparse_sampled_addmm", "aten::copy_", "aten::index",
                                 "aten::zeros_like", "autograd::engine::evaluate_function: AddmmBackward0")] == [
        "products", "products", "copies", "copies", "bookkeeping", "bookkeeping"]
