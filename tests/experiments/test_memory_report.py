"""``run_memory``: counted bytes of tiny dense and sparse models against hand counts, the report files,
and its one-line errors."""
import json

import pytest
import torch

from sparsenet.experiments.training_memory import MIB, run_memory, step_allocated_peak
from sparsenet.sparse import link_count

SPARSITY = 0.9
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sparse_layer(out_features: int, in_features: int) -> tuple[int, int]:
    """``(values + bias bytes, CSR + transposed-cache bytes)`` of one ``SparseLinear`` at ``SPARSITY`` (float32
    values; int32 crow (out+1), col (nnz), crow_t (in+1), col_t (nnz), perm (nnz): 12 bytes per link)."""
    nnz = link_count(out_features, in_features, 1 - SPARSITY)
    return 4 * (nnz + out_features), 4 * (out_features + 1 + in_features + 1) + 12 * nnz


def _dense_layer(out_features: int, in_features: int) -> int:
    return 4 * (out_features * in_features + out_features)


def _report(tmp_path, model: str, **options) -> tuple[str, dict]:
    table = run_memory(model, "mnist" if model == "mlp" else "iwslt14", [SPARSITY], "cpu", steps=2,
                       out=str(tmp_path / model), **options)
    assert (tmp_path / f"{model}.png").read_bytes()[:8] == PNG_MAGIC
    return table, json.loads((tmp_path / f"{model}.json").read_text())


def _check_rows(table: str, rows: list[dict], expected: dict) -> None:
    """Rows dense then sparse equal ``expected[sparsity] = (params, grads, optimizer, structure)``; the sparse
    model holds less; the table shows the same numbers; the measured peak holds at least the counted tensors
    (a measurement taken before the optimizer state exists, or of the wrong process, fails that)."""
    assert [r["sparsity"] for r in rows] == [0.0, SPARSITY]
    for row in rows:
        assert (row["params"], row["grads"], row["optimizer"], row["structure"]) == expected[row["sparsity"]]
        assert row["counted"] == sum(expected[row["sparsity"]])
        assert row["measured_peak"] >= row["counted"] and row["activation"] == row["measured_peak"] - row["counted"]
        assert row["total_peak"] == row["counted"] + row["activation"]
        line = next(line for line in table.splitlines() if line.startswith(f"| {row['sparsity']:g} |"))
        assert line.split(" | ")[1:5] == [f"{row[k] / MIB:.2f}" for k in ("params", "grads", "optimizer", "structure")]
        assert row["step_allocated"] >= row["grads"] > 0  # the step makes the gradients, at least
        assert row["allocated_peak"] == row["params"] + row["optimizer"] + row["structure"] + row["step_allocated"]
        assert line.split(" | ")[-2] == f"{row['allocated_peak'] / MIB:.1f}"
    dense, sparse = rows
    for key in ("params", "grads", "optimizer"):
        assert sparse[key] < dense[key]
    assert sparse["step_allocated"] <= dense["step_allocated"]  # issue 14: activations no higher than dense
    assert sparse["measured_peak"] < dense["measured_peak"]
    assert sparse["counted"] < dense["counted"] and sparse["counted_ratio"] == sparse["counted"] / dense["counted"]


def _mlp_hand_counts() -> dict:
    """The 784-256-256-10 MLP's expected rows: values, gradients, SGD momentum (one buffer per parameter) and
    structure bytes, dense and at ``SPARSITY``."""
    shapes = [(256, 784), (256, 256)]
    output = _dense_layer(10, 256)
    dense = sum(_dense_layer(*shape) for shape in shapes) + output
    sparse, structure = (sum(column) for column in zip(*(_sparse_layer(*shape) for shape in shapes)))
    sparse += output
    return {0.0: (dense, dense, dense, 0), SPARSITY: (sparse, sparse, sparse, structure)}


def test_mlp_sparse_holds_less_and_matches_hand_counts(tmp_path):
    table, report = _report(tmp_path, "mlp", hidden=(256, 256), batch=8)
    _check_rows(table, report["rows"], _mlp_hand_counts())
    assert report["sizes"] == {"in_features": 784, "hidden": [256, 256], "classes": 10} and report["batch"] == 8


def test_transformer_sparse_holds_less_and_matches_hand_counts(tmp_path):
    vocab, d, ff = 100, 32, 64
    table, report = _report(tmp_path, "transformer", vocab=vocab, d_model=d, heads=4, layers=1, d_ff=ff, batch=4,
                            length=8)
    projections = [(d, d)] * (4 + 8) + [(ff, d), (d, ff)] * 2  # encoder + decoder attention (self, cross), FFNs
    norms = 2 + 3 + 2                                              # encoder, decoder, final layer norms
    shared = vocab * d * 4 + _dense_layer(vocab, d) + norms * 2 * d * 4  # embedding, generator, norms
    dense = shared + sum(_dense_layer(*shape) for shape in projections)
    sparse, structure = (sum(column) for column in zip(*(_sparse_layer(*shape) for shape in projections)))
    sparse += shared
    steps = 4 * (1 + 2 + 2 * len(projections) + 2 * norms)  # Adam's float32 step counter per parameter tensor
    expected = {0.0: (dense, dense, 2 * dense + steps, 0), SPARSITY: (sparse, sparse, 2 * sparse + steps, structure)}
    _check_rows(table, report["rows"], expected)


def test_bf16_keeps_float32_master_bytes_and_says_so(tmp_path):
    """Under bf16 autocast the held tensors are the float32 ones (values, gradients, momentum): the same hand
    counts as fp32; the step's bf16 activations are the step's transient bytes."""
    table, report = _report(tmp_path, "mlp", hidden=(256, 256), batch=8, precision="bf16")
    _check_rows(table, report["rows"], _mlp_hand_counts())
    assert report["precision"] == "bf16" and table.startswith("mlp for mnist, 2 bf16 steps on cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_one_line_error(tmp_path):
    with pytest.raises(ValueError) as error:
        run_memory("mlp", "digits", [SPARSITY], "cuda", out=str(tmp_path / "never"))
    assert "this machine has no CUDA device" in str(error.value) and "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("options, message", [
    (dict(sparsities=[1.0]), "sparsity must be in [0, 1)"),
    (dict(sparsities=[-0.1]), "sparsity must be in [0, 1)"),
    (dict(model="cnn"), "unknown model"),
    (dict(dataset="iwslt14"), "unknown dataset"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(device="tpu"), "unknown device"),
    (dict(device="cuda:x"), "unknown device"),
    (dict(precision="fp16"), "unknown precision 'fp16'; choose fp32 or bf16"),
    (dict(hidden=(0,)), "hidden must be a positive integer"),
    (dict(d_model=8), "unknown sizes"),
])
def test_bad_input_is_one_line_error(tmp_path, options, message):
    arguments = dict(model="mlp", dataset="digits", sparsities=[SPARSITY], out=str(tmp_path / "never")) | options
    with pytest.raises(ValueError, match=r"^[^\n]+$") as error:
        run_memory(**arguments)
    assert message in str(error.value)


def test_the_step_peak_follows_allocations_and_frees_exactly():
    def step():
        a = torch.empty(250_000)              # 1,000,000 bytes
        b = torch.empty(500_000)              # 2,000,000: 3 MB live
        del a
        c = torch.empty(125_000)              # 0.5 MB: 2.5 MB live
        del b, c
        d = torch.empty(100_000)              # 0.4 MB live
        return d
    kept = torch.empty(1_000_000)             # made before: neither counted nor freed inside
    assert step_allocated_peak(step) == 3_000_000
    del kept


def test_the_step_peak_counts_a_block_freed_inside_but_made_before_as_a_free():
    """The documented lower bound: a block made before the step and freed inside it is a negative."""
    kept = [torch.empty(250_000)]             # 1,000,000 bytes, made before

    def step():
        kept.clear()                          # -1 MB
        return torch.empty(500_000)           # +2 MB: the step's own bytes, seen as 1 MB above the start
    assert step_allocated_peak(step) in (1_000_000, 2_000_000)  # 2 MB where the profiler does not see the free
