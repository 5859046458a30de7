"""The kernel's operand forms by value and layout: feature-major copies and batch blocks are contiguous, shared
per input and per form inside ``shared_inputs()``; the backward-blocked path returns the call's dtype and keeps
the input blocks only when the values need a gradient."""
import torch

from sparsenet.sparse import SparseLinear, shared_inputs
from sparsenet.sparse import functional
from sparsenet.sparse.functional import batch_blocks, feature_major


def test_feature_major_and_batch_blocks_are_contiguous_copies_with_the_input_values():
    x = torch.arange(15.0).reshape(5, 3)
    major = feature_major(x)
    assert major.shape == (3, 5) and major.is_contiguous() and torch.equal(major, x.t())
    halved = feature_major(x, torch.float64)
    assert halved.dtype == torch.float64 and halved.is_contiguous() and torch.equal(halved, x.t().double())
    blocks = batch_blocks(x)
    assert [b.shape for b in blocks] == [(3, 5)] and all(b.is_contiguous() for b in blocks)
    assert torch.equal(blocks[0], x.t())


def test_shared_inputs_keeps_one_copy_per_input_and_per_form(monkeypatch):
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    first, second = torch.randn(5, 3), torch.randn(5, 3)
    with shared_inputs():
        copy = feature_major(first)
        other = feature_major(second)
        assert feature_major(first) is copy and feature_major(second) is other and not torch.equal(copy, other)
        blocks = batch_blocks(first)  # the other form of the same input: its own entry
        assert [b.shape for b in blocks] == [(3, 2), (3, 2), (3, 1)]
        assert torch.equal(torch.cat(blocks, 1), first.t()) and batch_blocks(first) is blocks
        assert feature_major(first) is copy


def _backward_blocked(monkeypatch, dtype, values_grad: bool):
    """A 2 -> 20 layer on 5 rows in blocks of 2: the forward operand (2, 5) stays under 100 bytes, the backward's
    (20, 5) goes over: the forward unblocked, the backward blocked."""
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 100)
    layer = SparseLinear(2, 20, density=0.5, generator=torch.Generator().manual_seed(0)).to(dtype)
    layer.values.requires_grad_(values_grad)
    x = torch.randn(5, 2, dtype=torch.float64).to(dtype).requires_grad_(True)
    assert functional._blocking(x, 20, functional.kernel_dtypes(x, layer.values).spmm) == (False, True)
    return layer, x


def test_the_backward_blocked_path_returns_the_calls_dtype(monkeypatch):
    layer, x = _backward_blocked(monkeypatch, torch.bfloat16, True)
    y = layer(x)
    assert y.dtype == torch.bfloat16
    expected = x.double() @ layer.to_dense().double().t() + layer.bias.double()
    torch.testing.assert_close(y.double(), expected, rtol=2e-2, atol=2e-2)


def test_blocked_inputs_are_saved_only_when_the_values_need_a_gradient(monkeypatch):
    for values_grad, saved_count in ((True, 2), (False, 1)):  # values, and the input operand for dW
        layer, x = _backward_blocked(monkeypatch, torch.float32, values_grad)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            layer(x)
        assert len(saved) == saved_count, values_grad
