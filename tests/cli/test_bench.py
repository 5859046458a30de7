"""``python cli.py bench`` prints the comparison table with consistent ratio columns."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_table_with_all_shapes_and_sparsities():
    result = subprocess.run([sys.executable, "cli.py", "bench", "--repeats", "1", "--warmup", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "×" in line
            and not line.startswith("| out")]
    assert len(rows) == 16
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        dense_ms, sparse_ms, ratio = float(cells[3]), float(cells[5]), float(cells[6].rstrip("×"))
        assert abs(dense_ms / sparse_ms - ratio) <= 0.051 * max(ratio, 1)
        assert float(cells[10]) < float(cells[8])  # sparse MiB below dense MiB at every sparsity >= 0.9

