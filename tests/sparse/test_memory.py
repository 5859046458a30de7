"""Byte counts of memory.py against hand arithmetic and against a real Adam optimizer's state."""
import pytest
import torch
from torch import nn

from sparsenet.sparse import SparseLinear, format_memory_table, layer_memory, total_memory


def test_sparse_layer_bytes_by_hand():
    layer = SparseLinear(30, 20, density=0.1)  # out 20, in 30, nnz 60
    (sparse, dense), = layer_memory(layer, "adam")
    nnz, out_f, in_f = 60, 20, 30
    assert sparse.weights == 4 * (nnz + out_f)
    csr = 4 * (out_f + 1) + 4 * nnz  # the stored links: int32 row pointers and columns
    transposed = 4 * (in_f + 1) + 4 * nnz + 4 * nnz  # the cache: pointers, rows, permutation
    assert sparse.structure == csr + transposed
    assert (sparse.structure - 4 * (out_f + in_f + 2)) / nnz == 12  # bytes of structure per link
    assert sparse.grads == 4 * (nnz + out_f) and sparse.optimizer == 8 * (nnz + out_f)
    assert dense.weights == 4 * (out_f * in_f + out_f) and dense.optimizer == 2 * dense.weights
    assert dense.structure == 0


def test_optimizer_bytes_match_a_real_adam_step():
    model = nn.Sequential(SparseLinear(50, 40, density=0.2), nn.ReLU(), nn.Linear(40, 3))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(8, 50)).sum().backward()
    optimizer.step()
    state_bytes = sum(t.numel() * t.element_size() for s in optimizer.state.values()
                      for k, t in s.items() if k != "step")
    grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    rows = layer_memory(model, "adam")
    assert sum(s.optimizer for s, _ in rows) == state_bytes
    assert sum(s.grads for s, _ in rows) == grad_bytes


def test_99_percent_layer_uses_at_most_2_percent_of_dense():
    sparse, dense = total_memory(SparseLinear(1568, 1568, density=0.01), "adam")  # 16 B/link + 12 B/link
    assert sparse <= 0.02 * dense


def test_table_and_bad_optimizer():
    table = format_memory_table(layer_memory(nn.Sequential(SparseLinear(10, 10, density=0.5)), "sgd"))
    assert table.splitlines()[-1].startswith("| total |")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        layer_memory(nn.Linear(2, 2), "lion")


def test_memory_bytes_by_hand_before_and_after_the_cache_is_built():
    layer = SparseLinear(30, 20, density=0.1)  # out 20, in 30, nnz 60
    csr = 4 * 21 + 4 * 60
    assert layer.memory_bytes() == {"values": 240, "indices": csr, "caches": 0, "bias": 80, "total": 240 + csr + 80}
    layer.cache
    cache = 4 * 31 + 4 * 60 * 2
    assert layer.memory_bytes() == {"values": 240, "indices": csr, "caches": cache, "bias": 80,
                                    "total": 240 + csr + cache + 80}
    unbiased = SparseLinear(30, 20, density=0.1, bias=False, dtype=torch.float64)
    assert unbiased.memory_bytes() == {"values": 480, "indices": csr, "caches": 0, "bias": 0, "total": 480 + csr}


@pytest.mark.parametrize("optimizer,slots", [("sgd", 0), ("momentum", 1), ("adam", 2), ("adamw", 2)])
def test_every_optimizer_keeps_its_number_of_state_slots(optimizer, slots):
    model = nn.Sequential(SparseLinear(30, 20, density=0.1), nn.ReLU(), nn.Linear(20, 5, bias=False))
    (sparse, dense), (linear, linear_dense) = layer_memory(model, optimizer)
    assert (sparse.name, linear.name) == ("0", "2")  # modules without parameters (the root, ReLU) get no row
    assert sparse.optimizer == slots * 4 * 80 and dense.optimizer == slots * 4 * 620
    assert linear == linear_dense and linear.weights == linear.grads == 400 and linear.optimizer == slots * 400
    assert total_memory(model, optimizer) == (sparse.total + linear.total, dense.total + linear.total)
    assert sparse.total == 320 + sparse.structure + 320 + slots * 320


def test_memory_table_by_value():
    """A 25%-dense 1024 x 1024 layer (262144 links) and a dense 1024 -> 256 layer, momentum (one slot), in MiB:
    sparse weights 4·(262144 + 1024) B, structure 4·(2·1025 + 3·262144) B, dense twin 4·(1024² + 1024) B."""
    model = nn.Sequential(SparseLinear(1024, 1024, density=0.25), nn.Linear(1024, 256))
    assert format_memory_table(layer_memory(model, "momentum")).splitlines() == [
        "| layer | sparse weights | structure | grads | optimizer | sparse total | dense total | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        "| 0 | 1.004 | 3.008 | 1.004 | 1.004 | 6.020 | 12.012 | 50.11% |",
        "| 1 | 1.001 | 0.000 | 1.001 | 1.001 | 3.003 | 3.003 | 100.00% |",
        "| total | 2.005 | 3.008 | 2.005 | 2.005 | 9.022 | 15.015 | 60.09% |",
    ]


def test_memory_table_names_a_root_layer_and_survives_an_empty_model():
    assert format_memory_table(layer_memory(SparseLinear(4, 4, density=0.5), "sgd")).splitlines()[2].startswith(
        "| (root) | 0.000 |")
    assert format_memory_table([]).splitlines()[-1] == \
        "| total | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.00% |"


def test_the_default_optimizer_is_adam():
    model = nn.Sequential(SparseLinear(30, 20, density=0.1), nn.Linear(20, 5))
    assert layer_memory(model) == layer_memory(model, "adam") != layer_memory(model, "sgd")
    assert total_memory(model) == total_memory(model, "adam") != total_memory(model, "momentum")
