"""``python cli.py inspect``: measures as JSON, an optional plot, one-line errors."""
import json
from pathlib import Path

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_inspect_bsw_prints_measures_and_plots(tmp_path):
    plot = tmp_path / "degree.png"
    result = run_cli("inspect", "--init", "bsw", "--beta", "0.25", "--shape", "1568,1568", "--density", "0.01",
                     "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["nnz"] == 24586 and report["shape"] == [1568, 1568] and report["beta"] == 0.25
    assert abs(report["output_degree"]["mean"] - 24586 / 1568) < 1e-3
    assert 0.05 < report["mean_ring_distance"] < 0.25  # a quarter of links rewired
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_every_initializer_by_name():
    for init, shape in [("er", "100,50"), ("bsf", "100,50"), ("brf", "100,50"), ("csti", "128,64")]:
        result = run_cli("inspect", "--init", init, "--shape", shape, "--density", "0.1")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1])["nnz"] == round(0.1 * eval(shape.replace(",", "*")))


def test_inspect_bad_input_is_one_line():
    for args, message in [(("--init", "ws"), "unknown init 'ws'"), (("--shape", "5"), "--shape must be two"),
                          (("--density", "1.5"), "density must be a number in (0, 1]")]:
        result = run_cli("inspect", *args)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and message in result.stderr
