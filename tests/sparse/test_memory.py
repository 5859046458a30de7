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
