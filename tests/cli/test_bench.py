"""``python cli.py bench`` prints the comparison table with consistent ratio columns on the device it names, and
refuses bad options in one line; the package's bench code (``sparsenet.experiments.layer_bench``) measures every
form of the layer on each device present."""
import pytest
import torch

from sparsenet.experiments.layer_bench import GPU_SHAPE, SHAPES, default_shapes, measure, parse_shapes, time_shares
from sparsenet.experiments.timing import cpu_model
from sparsenet.train.device import resolve_device
from sparsenet.sparse import SparseLinear, link_count
from tests.conftest import run_cli
from tests.devices import DEVICES


def _rows(stdout: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("| ") and "×" in line and not line.startswith("| out")]


def test_bench_prints_table_with_all_shapes_and_sparsities():
    result = run_cli("bench", "--repeats", "1", "--warmup", "0", "--profile", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    machine = result.stdout.splitlines()[0]
    assert machine.startswith(f"Machine: {cpu_model()} (") and "threads, torch" in machine and "(wall clock)" in machine
    rows = _rows(result.stdout)
    assert len(rows) == 16 and [r[0] for r in rows[::4]] == [f"{o}x{i}" for o, i, _ in SHAPES]  # no 8192² on CPU
    for cells in rows:
        dense_ms, bf16_ms, masked_ms, sparse_ms, sparse_bf16_ms = (float(cells[i]) for i in (3, 5, 6, 7, 8))
        assert cells[4] == "—" and cells[10] == "—"  # TF32: CUDA only
        for numerator, denominator, ratio in ((dense_ms, sparse_ms, cells[9]), (masked_ms, sparse_ms, cells[11]),
                                              (bf16_ms, sparse_bf16_ms, cells[12])):
            ratio = float(ratio.rstrip("×"))
            assert abs(numerator / denominator - ratio) <= 0.051 * max(ratio, 1)
        assert float(cells[15]) < float(cells[13]) < float(cells[14])  # sparse < dense < dense+mask MiB
        shares = [float(c.rstrip("%")) for c in cells[17:20]]  # --profile: products, copies, bookkeeping
        assert len(shares) == 3 and abs(sum(shares) - 100) <= 2 and shares[0] > 0


def test_bench_takes_shapes_and_sparsities():
    result = run_cli("bench", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--shapes", "64x32x8,48x40x4",
                     "--sparsities", "0.5,0.9")
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert [(r[0], r[1], r[2]) for r in rows] == [("64x32", "8", "0.500"), ("64x32", "8", "0.900"),
                                                 ("48x40", "4", "0.500"), ("48x40", "4", "0.900")]
    assert all(len(r) == 17 for r in rows)  # no profile columns


@pytest.mark.parametrize("options, message", [
    (["--device", "tpu"], "error: unknown device 'tpu'; choose from auto, cpu, cuda or cuda:N"),
    (["--device", "cuda:x"], "error: unknown device 'cuda:x'; choose from auto, cpu, cuda or cuda:N"),
    (["--shapes", "64x32"], "error: shape '64x32' is not OUTxINxBATCH with three positive integers"),
    (["--shapes", "64x0x8"], "error: shape '64x0x8' is not OUTxINxBATCH with three positive integers"),
    (["--sparsities", "1.0"], "error: sparsity must be in (0, 1), got 1.0"),
    (["--repeats", "0"], "error: --repeats and --threads must be >= 1 and --warmup >= 0"),
])
def test_bad_options_are_one_line_errors_before_any_work(options, message):
    result = run_cli("bench", *options)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_line(device):
    result = run_cli("bench", "--device", device)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: --device {device}: this machine has no CUDA device (or this torch build has no CUDA); use "
        f"--device cpu or auto"]


def test_auto_is_cuda_exactly_when_present_and_cuda_gets_the_8192_shape():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert default_shapes(torch.device("cpu")) == SHAPES
    assert default_shapes(torch.device("cuda")) == SHAPES + [GPU_SHAPE] and GPU_SHAPE == (8192, 8192, 4096)


def test_shapes_parse_from_text_and_from_fire_tuples():
    assert parse_shapes("8192x8192x4096") == [(8192, 8192, 4096)]
    assert parse_shapes(("64x32x8", "16×8×2")) == [(64, 32, 8), (16, 8, 2)]


@pytest.mark.parametrize("device", DEVICES)
def test_measure_times_every_form_and_counts_the_bytes(device):
    out_f, in_f, rows = 48, 40, 8
    result = measure(out_f, in_f, rows, [0.5, 0.9], repeats=2, warmup=1, device=device)
    assert [r["sparsity"] for r in result] == [0.5, 0.9]
    dense_bytes = 4 * 4 * (out_f * in_f + out_f)  # weight + bias; their gradients; Adam's two moments
    for r in result:
        assert r["nnz"] == link_count(out_f, in_f, 1 - r["sparsity"])
        assert all(r[k] > 0 for k in ("dense_ms", "bf16_ms", "masked_ms", "sparse_ms", "sparse_bf16_ms"))
        assert (r["tf32_ms"] is None) == (torch.device(device).type != "cuda")
        assert r["dense_bytes"] == dense_bytes and r["masked_bytes"] == dense_bytes + out_f * in_f
        assert r["sparse_bytes"] < dense_bytes


def test_time_shares_are_the_three_parts_non_negative_and_summing_to_one():
    """Structure only: which part is larger is a timing, and timings are not asserted (benchmarks/ reports
    them)."""
    layer = SparseLinear(512, 256, density=0.05, generator=torch.Generator().manual_seed(0))
    x = torch.randn(256, 512, requires_grad=True)
    shares = time_shares(layer, x, repeats=5, warmup=1)
    assert set(shares) == {"products", "copies", "bookkeeping"} and abs(sum(shares.values()) - 1) < 1e-9
    assert all(share >= 0 for share in shares.values()) and shares["products"] > 0


def test_median_ms_times_each_call_after_the_warm_up_and_takes_the_median(monkeypatch):
    from sparsenet.experiments import timing
    clock = iter([0.0, 0.003, 1.0, 1.001, 2.0, 2.002])  # three timed calls of 3, 1 and 2 ms
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert timing.median_ms(lambda: calls.append(1), repeats=3, warmup=2, device="cpu") == pytest.approx(2.0)
    assert len(calls) == 5 and next(clock, None) is None
