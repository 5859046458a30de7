"""Kernel parity: SparseLinear against a dense float64 reference built from ``to_dense()``."""
import pytest
import torch

from sparsenet.sparse import SparseLinear, sparse_linear
from tests.devices import DEVICES


def _layer(out_f, in_f, nnz, seed, bias=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(out_f * in_f, generator=g)[:nnz]
    indices = torch.stack((keys // in_f, keys % in_f))
    layer = SparseLinear(in_f, out_f, bias=bias, indices=indices, dtype=dtype, generator=g)
    with torch.no_grad():
        layer.values.normal_(generator=g)
    return layer


def _dense_reference(layer, x):
    weight = layer.to_dense().clone().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = x_ref @ weight.t()
    if layer.bias is not None:
        y = y + layer.bias.detach()
    return y, weight, x_ref


CASES = [  # (out, in, nnz, input leading shape)
    (1, 1, 1, (3,)),
    (5, 7, 0, (4,)),
    (5, 7, 35, (4,)),
    (9, 4, 11, (2, 3)),
    (4, 9, 6, (6,)),
    (30, 20, 50, (2, 5, 3)),
    (64, 128, 300, (17,)),
    (3, 50, 10, (1,)),
]


@pytest.mark.parametrize("out_f,in_f,nnz,lead", CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("device", DEVICES)
def test_forward_and_gradients_match_dense(out_f, in_f, nnz, lead, bias, device):
    layer = _layer(out_f, in_f, nnz, seed=out_f * 1000 + in_f + nnz, bias=bias).to(device)
    x = torch.randn(*lead, in_f, dtype=torch.float64).to(device).requires_grad_(True)
    y = layer(x)
    y_ref, weight_ref, x_ref = _dense_reference(layer, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    y_ref.backward(grad_out)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    rows, cols = layer.indices
    torch.testing.assert_close(layer.values.grad, weight_ref.grad[rows, cols], rtol=1e-12, atol=1e-12)
    if bias:
        torch.testing.assert_close(layer.bias.grad, grad_out.reshape(-1, out_f).sum(0))


def test_empty_rows_and_columns():
    indices = torch.tensor([[0, 0, 3], [1, 4, 1]])  # rows 1, 2 and columns 0, 2, 3 empty
    layer = SparseLinear(5, 4, indices=indices, dtype=torch.float64)
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    layer(x).pow(2).sum().backward()
    y_ref, weight_ref, x_ref = _dense_reference(layer, x)
    y_ref.pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.values.grad, weight_ref.grad[indices[0], indices[1]])
    assert torch.all(x.grad[:, [0, 2, 3]] == 0)


def test_gradcheck_float64():
    layer = _layer(6, 5, 12, seed=3)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    values = layer.values.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x_, v_, b_: sparse_linear(x_, v_, layer.cache, b_), (x, values, bias))


def test_float32_close_to_float64():
    layer64 = _layer(40, 30, 200, seed=7)
    layer32 = SparseLinear(30, 40, indices=layer64.indices, dtype=torch.float32)
    layer32.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in layer64.state_dict().items()})
    x = torch.randn(8, 30, dtype=torch.float64)
    torch.testing.assert_close(layer32(x.float()).double(), layer64(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_chained_layers_feature_major_view_is_correct(device):
    first, second = _layer(12, 10, 40, seed=1).to(device), _layer(6, 12, 30, seed=2).to(device)
    x = torch.randn(5, 10, dtype=torch.float64).to(device)
    hidden = first(x)
    out = second(torch.relu(hidden))
    w1, w2 = first.to_dense(), second.to_dense()
    expected = torch.relu(x @ w1.t() + first.bias) @ w2.t() + second.bias
    torch.testing.assert_close(out, expected)


def test_wrong_input_width_raises():
    layer = _layer(4, 3, 5, seed=0)
    with pytest.raises(ValueError, match="expects 3"):
        layer(torch.randn(2, 4, dtype=torch.float64))
