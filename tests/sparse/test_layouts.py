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


# (x's shape, out_features, BLOCK_ROWS, BLOCKED_OPERAND_BYTES, (forward, backward)), float32 operands (4 bytes)
BLOCKING = [
    ((4, 6, 3), 2, 20, 287, (True, True)),  # 24 rows: the forward operand 3·24·4 = 288 bytes > 287
    ((4, 6, 3), 2, 20, 288, (False, False)),  # = 288 is not above it; (out, n) 2·24·4 = 192
    ((4, 6, 3), 5, 20, 288, (False, True)),  # (out, n) 5·24·4 = 480
    ((4, 6, 3), 4, 20, 384, (False, False)),  # (out, n) exactly 384: not above
    ((4, 6, 3), 2, 24, 1, (False, False)),  # 24 rows in blocks of 24: one block, nothing to split
    ((10, 1), 9, 6, 300, (False, True)),  # one feature: 10 rows; (out, n) 9·10·4 = 360
    ((10, 0), 9, 6, 0, (False, False)),  # no features
]


def test_blocking_decisions_by_value(monkeypatch):
    for shape, out_features, rows, limit, expected in BLOCKING:
        monkeypatch.setattr(functional, "BLOCK_ROWS", rows)
        monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", limit)
        assert functional._blocking(torch.zeros(shape), out_features) == expected, (shape, out_features, limit)
        assert functional._blocking(torch.zeros(shape, dtype=torch.float64), out_features, torch.float32) == expected
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    assert functional._blocking(torch.zeros(3, 10).t(), 5) == (False, False)  # feature-major: never blocked


def test_the_layer_decides_blocking_on_its_product_dtype_not_the_inputs(monkeypatch):
    """A bf16 call's CPU products run in float32: the (out, n) operand of 20 x 5 is 400 bytes, not 200."""
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 300)
    calls, blocked = [], functional._BlockedSparseMatmul.apply
    monkeypatch.setattr(functional._BlockedSparseMatmul, "apply", lambda *args: calls.append(args) or blocked(*args))
    layer = SparseLinear(2, 20, density=0.5, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    layer(torch.randn(5, 2).to(torch.bfloat16).requires_grad_(True))
    assert len(calls) == 1


def test_a_wrong_feature_count_is_named_for_a_3d_input():
    layer = SparseLinear(6, 2, density=0.5)
    try:
        layer(torch.zeros(2, 3, 4))
    except ValueError as error:
        assert str(error) == "input has 4 features, the layer expects 6"
    else:
        raise AssertionError("no error")


def test_a_shared_copy_is_dropped_when_its_input_dies_and_the_input_may_outlive_the_block(monkeypatch):
    import gc
    import sys
    raised = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    outliving = torch.randn(5, 3)
    with shared_inputs():
        x = torch.randn(5, 3)
        feature_major(x)
        feature_major(outliving)
        memo = functional._MEMOS[-1]
        assert len(memo) == 2
        del x
        gc.collect()
        assert len(memo) == 1  # x's entry went with x
    del outliving
    gc.collect()
    assert raised == []  # its entry (and the weakref whose callback would pop it) went with the block
