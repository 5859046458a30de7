"""Edge cases found in review: stale graphs, device/dtype moves, the int64 CSR path, NaN isolation."""
import pytest
import torch

import sparsenet.sparse.csr as csr
from sparsenet.sparse import SparseLinear, sample_absent_keys


def test_edit_between_forward_and_backward_raises_instead_of_wrong_gradients():
    layer = SparseLinear(6, 5, density=0.5, dtype=torch.float64)
    y = layer(torch.randn(3, 6, dtype=torch.float64))
    keep = torch.ones(layer.nnz, dtype=torch.bool)
    keep[0] = False
    layer.remove(keep)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_dtype_move_after_forward_rebuilds_caches():
    layer = SparseLinear(6, 5, density=0.5)
    layer(torch.randn(2, 6))
    layer.double()
    assert layer._cache is None
    x = torch.randn(2, 6, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.to_dense().t() + layer.bias)


def test_int64_csr_path_matches_dense(monkeypatch):
    monkeypatch.setattr(csr, "INT32_LIMIT", 0)
    layer = SparseLinear(9, 7, density=0.4, dtype=torch.float64)
    assert {layer.crow.dtype, layer.col.dtype, layer.cache.col_t.dtype, layer.cache.perm.dtype} == {torch.int64}
    x = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    layer(x).square().sum().backward()
    weight = layer.to_dense().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    (x_ref @ weight.t() + layer.bias.detach()).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.values.grad, weight.grad[layer.indices[0], layer.indices[1]])


def test_double_backward_is_refused_rather_than_densified():
    layer = SparseLinear(4, 3, density=0.5, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    grad_x, = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad_x.sum().backward()


def test_nan_weight_does_not_poison_its_own_gradient():
    layer = SparseLinear(4, 3, indices=torch.tensor([[0, 1, 2], [0, 1, 2]]))
    with torch.no_grad():
        layer.values.copy_(torch.tensor([float("nan"), float("inf"), 1.0]))
    x = torch.ones(2, 4)
    layer(x).backward(torch.ones(2, 3))
    assert layer.values.grad.tolist() == [2.0, 2.0, 2.0]


def test_sample_absent_keys_needs_sorted_present():
    with pytest.raises(ValueError, match="present must be sorted"):
        sample_absent_keys(torch.tensor([5, 1, 3]), 10, 2)
