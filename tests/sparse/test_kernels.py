"""Kernel parity: SparseLinear against a dense float64 reference built from ``to_dense()``."""
import pytest
import torch

from sparsenet.sparse import SparseLinear, sparse_linear
from sparsenet.sparse.functional import shared_inputs
from tests.devices import DEVICES


def _layer(out_f, in_f, nnz, seed, bias=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(out_f * in_f, generator=g)[:nnz]
    indices = torch.stack((keys // in_f, keys % in_f))
    layer = SparseLinear(in_f, out_f, bias=bias, indices=indices, dtype=dtype, generator=g)
    with torch.no_grad():
        layer.values.normal_(generator=g)
    return layer


def _assert_matches_dense(layer, x) -> torch.Tensor:
    """Forward, input gradient and value gradients of ``layer`` at ``x`` (a leaf) equal the dense float64
    reference's to 1e-12; returns the output gradient used."""
    y = layer(x)
    y_ref, weight_ref, x_ref = _dense_reference(layer, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    y_ref.backward(grad_out)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    rows, cols = layer.indices
    torch.testing.assert_close(layer.values.grad, weight_ref.grad[rows, cols], rtol=1e-12, atol=1e-12)
    return grad_out


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
    grad_out = _assert_matches_dense(layer, x)
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


def _saved_feature_major_copies(run) -> int:
    """Distinct storages of 2-D tensors autograd saves while ``run()`` builds its graph (the kernels' inputs)."""
    storages = set()

    def pack(tensor):
        if tensor.dim() == 2:
            storages.add(tensor.untyped_storage().data_ptr())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return storages


def test_projections_of_one_input_share_one_saved_copy_and_keep_their_gradients():
    q, k, v = (_layer(6, 10, 25, seed) for seed in (1, 2, 3))
    x = torch.randn(4, 5, 10, dtype=torch.float64, requires_grad=True)
    outputs = {}
    with shared_inputs():
        shared = _saved_feature_major_copies(lambda: outputs.update(shared=[f(x) for f in (q, k, v)]))
    x_alone = [x.detach().clone().requires_grad_(True) for _ in range(3)]  # unshared: one input each
    with shared_inputs():
        alone = _saved_feature_major_copies(lambda: outputs.update(alone=[f(i) for f, i in zip((q, k, v), x_alone)]))
    value_storages = {layer.values.untyped_storage().data_ptr() for layer in (q, k, v)}
    assert len(shared - value_storages) == 1 and len(alone - value_storages) == 3
    weights = [torch.randn(4, 5, 6, dtype=torch.float64) for _ in range(3)]
    grads = {}
    for name, inputs in (("shared", [x]), ("alone", x_alone)):
        for layer in (q, k, v):
            layer.values.grad = None
        sum((y * w).sum() for y, w in zip(outputs[name], weights)).backward()
        grads[name] = ([layer.values.grad.clone() for layer in (q, k, v)], sum(i.grad for i in inputs))
    for shared_grad, alone_grad in zip(grads["shared"][0], grads["alone"][0]):
        torch.testing.assert_close(shared_grad, alone_grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads["shared"][1], grads["alone"][1], rtol=1e-12, atol=1e-12)
    for layer, y in zip((q, k, v), outputs["shared"]):
        torch.testing.assert_close(y, _dense_reference(layer, x)[0], rtol=1e-12, atol=1e-12)


@shared_inputs()
def test_an_input_changed_in_place_or_in_another_grad_mode_gets_a_fresh_copy():
    layer = _layer(6, 10, 25, 0)
    x = torch.randn(3, 10, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
    x_grad = x.requires_grad_(True)
    y = layer(x_grad)  # no-grad copy not reused: the gradient reaches x
    y.sum().backward()
    assert x_grad.grad is not None and layer.values.grad is not None
    z = torch.randn(3, 10, dtype=torch.float64)
    first = layer(z)
    z.mul_(2.0)
    torch.testing.assert_close(layer(z), _dense_reference(layer, z)[0], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(first, layer(z))


def test_outside_the_block_nothing_is_shared():
    layer = _layer(6, 10, 25, 0)
    x = torch.randn(3, 10, dtype=torch.float64)
    with shared_inputs():
        layer(x)
    x.data.mul_(2.0)  # bypasses the version counter: only safe because the block has ended
    torch.testing.assert_close(layer(x), _dense_reference(layer, x)[0], rtol=1e-12, atol=1e-12)
    copies = _saved_feature_major_copies(lambda: [layer(x) for _ in range(2)])
    assert len(copies - {layer.values.untyped_storage().data_ptr()}) == 2  # one copy per call


LAYOUTS = {  # name -> a (6, 9) float64 input leaf of that memory layout
    "row-major": lambda g: torch.randn(6, 9, dtype=torch.float64, generator=g),
    "feature-major": lambda g: torch.randn(9, 6, dtype=torch.float64, generator=g).t(),  # a sparse layer's output
    "strided": lambda g: torch.randn(6, 18, dtype=torch.float64, generator=g)[:, ::2],
    "batch 1": lambda g: torch.randn(1, 9, dtype=torch.float64, generator=g),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_input_layout_matches_dense_and_its_gradient_keeps_the_layout(layout):
    layer = _layer(7, 9, 20, seed=5)
    x = LAYOUTS[layout](torch.Generator().manual_seed(0)).requires_grad_(True)
    _assert_matches_dense(layer, x)
    if x.is_contiguous() or x.t().is_contiguous():  # dense layouts: the gradient has the input's strides
        assert x.grad.stride() == x.stride()
    values = layer.values.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x_, v_: sparse_linear(x_, v_, layer.cache), (x.detach().requires_grad_(True),
                                                                                          values))


@pytest.mark.parametrize("out_f,in_f,nnz,rows", [(7, 9, 20, 6), (5, 7, 0, 4), (64, 128, 300, 33)])
@pytest.mark.parametrize("device", DEVICES)
def test_the_three_products_match_dense_and_ignore_their_output_buffers_garbage(out_f, in_f, nnz, rows, device):
    from sparsenet.sparse.functional import _csr_times_dense, forward_product, input_grad_product, values_grad_product
    layer = _layer(out_f, in_f, nnz, seed=nnz).to(device)
    g = torch.Generator().manual_seed(1)
    x_t, grad_y_t = (torch.randn(in_f, rows, dtype=torch.float64, generator=g).to(device),
                     torch.randn(out_f, rows, dtype=torch.float64, generator=g).to(device))
    weight, values, bias = layer.to_dense(), layer.values.detach(), layer.bias.detach()
    rows_, cols = layer.indices
    torch.testing.assert_close(forward_product(layer.cache, values, x_t, None), weight @ x_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(input_grad_product(layer.cache, values, grad_y_t), weight.t() @ grad_y_t,
                               rtol=1e-12, atol=1e-12)
    for matrix, dense, expected in ((layer.cache.matrix(values), x_t, weight @ x_t),
                                    (layer.cache.transposed(values), grad_y_t, weight.t() @ grad_y_t)):
        buffer = torch.full(expected.shape, float("nan"), dtype=torch.float64, device=device)
        result = _csr_times_dense(matrix, dense, out=buffer)  # an output buffer that is read shows NaN
        assert result.data_ptr() == buffer.data_ptr()
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forward_product(layer.cache, values, x_t, bias), weight @ x_t + bias[:, None],
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(values_grad_product(layer.cache, values, grad_y_t, x_t),
                               (grad_y_t @ x_t.t())[rows_, cols], rtol=1e-12, atol=1e-12)


@pytest.fixture
def small_blocks(monkeypatch):
    """Every row-major input of more than 2 rows goes through the kernel in blocks of 2 rows."""
    from sparsenet.sparse import functional
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 0)


@pytest.mark.parametrize("out_f,in_f,nnz,lead", [c for c in CASES if c[3] not in ((1,), (3,))] + [(5, 7, 35, (5,))])
@pytest.mark.parametrize("bias", [True, False])
def test_the_batch_blocked_path_matches_dense_and_keeps_the_row_major_layout(small_blocks, out_f, in_f, nnz, lead,
                                                                             bias):
    """CPU only: batch blocking is the CPU kernel's (``functional._blocking``)."""
    layer = _layer(out_f, in_f, nnz, seed=out_f * 1000 + in_f + nnz, bias=bias)
    x = torch.randn(*lead, in_f, dtype=torch.float64, requires_grad=True)
    blocked = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: blocked.append(t.dim() == 2 and t.shape[1] <= 2) or t,
                                                  lambda t: t):
        layer(x)
    assert blocked and all(blocked[1:])  # the values, then blocks of at most 2 rows: the blocked path
    grad_out = _assert_matches_dense(layer, x)
    assert x.grad.stride() == x.stride()
    if bias:
        torch.testing.assert_close(layer.bias.grad, grad_out.reshape(-1, out_f).sum(0))
    values = layer.values.detach().clone().requires_grad_(True)
    bias_ = layer.bias.detach().clone().requires_grad_(True) if bias else None
    assert torch.autograd.gradcheck(lambda x_, v_: sparse_linear(x_, v_, layer.cache, bias_),
                                    (x.detach().requires_grad_(True), values))


def test_the_batch_blocked_path_leaves_feature_major_and_small_inputs_unblocked(small_blocks):
    layer = _layer(6, 10, 25, 0)
    for x in (torch.randn(10, 7, dtype=torch.float64).t(), torch.randn(2, 10, dtype=torch.float64)):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
            y = layer(x.requires_grad_(True))
        assert saved == [x.t().shape, layer.values.shape]  # one whole feature-major copy: unblocked
        assert y.t().is_contiguous()


def test_the_batch_blocked_halves_are_chosen_by_the_operand_sizes():
    from sparsenet.sparse.functional import BLOCK_ROWS, BLOCKED_OPERAND_BYTES, _blocking
    rows = 2 * BLOCK_ROWS
    wide = BLOCKED_OPERAND_BYTES // (4 * rows) + 1  # features whose (features, rows) float32 operand is too large
    assert _blocking(torch.empty(rows, wide), 8) == (True, True)
    assert _blocking(torch.empty(rows, 8), wide) == (False, True)  # only the input gradient's operand is large
    assert _blocking(torch.empty(rows, wide - 2), wide - 2) == (False, False)
    assert _blocking(torch.empty(BLOCK_ROWS, wide), 8) == (False, False)  # one block
    assert _blocking(torch.empty(wide, rows).t(), 8) == (False, False)  # feature-major
    assert _blocking(torch.empty(rows, wide, device="meta"), 8) == (False, False)  # not a CPU tensor


def _graph_nodes(y: torch.Tensor) -> set[str]:
    """Names of the autograd nodes behind ``y``."""
    names, todo = set(), [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            todo += [next_node for next_node, _ in node.next_functions]
    return names


@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_the_backward_only_blocked_path_matches_dense(monkeypatch, lead):
    from sparsenet.sparse import functional
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 300)  # (out, n): 360+ bytes, above; (in, n): 160-192
    layer = _layer(9, 4, 20, seed=4)
    x = torch.randn(*lead, 4, dtype=torch.float64, requires_grad=True)
    assert functional._blocking(x, 9) == (False, True)
    assert "_BlockedSparseMatmulBackward" in _graph_nodes(layer(x))  # the path taken, not only chosen
    grad_out = _assert_matches_dense(layer, x)
    assert x.grad.stride() == x.stride()
    torch.testing.assert_close(layer.bias.grad, grad_out.reshape(-1, 9).sum(0))
    values = layer.values.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x_, v_, b_: sparse_linear(x_, v_, layer.cache, b_),
                                    (x.detach().requires_grad_(True), values, bias))


def test_a_last_block_of_one_row_is_a_copy_so_the_input_may_change_after_the_forward(small_blocks):
    layer = _layer(6, 10, 25, 0)
    x = torch.randn(5, 10, dtype=torch.float64)  # blocks of 2, 2 and 1 rows
    expected = _dense_reference(layer, x)
    y = layer(x)
    x.mul_(2.0)  # the saved blocks are copies: backward still sees the input of the forward
    upstream = torch.randn_like(y)
    y.backward(upstream)
    expected[0].backward(upstream)
    rows, cols = layer.indices
    torch.testing.assert_close(layer.values.grad, expected[1].grad[rows, cols], rtol=1e-12, atol=1e-12)


def test_blocked_and_unblocked_siblings_share_one_feature_major_copy(monkeypatch):
    from sparsenet.sparse import functional
    monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
    monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 300)
    wide, narrow = _layer(9, 4, 20, seed=4), _layer(2, 4, 5, seed=5)  # backward-only blocked, and unblocked
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert functional._blocking(x, 9) == (False, True) and functional._blocking(x, 2) == (False, False)
    with shared_inputs():
        saved = _saved_feature_major_copies(lambda: [wide(x), narrow(x)])
        assert functional._MEMOS[-1]
    assert len(saved - {layer.values.untyped_storage().data_ptr() for layer in (wide, narrow)}) == 1
    assert not functional._MEMOS


@shared_inputs()
def test_the_batch_blocked_path_shares_one_set_of_blocks_and_refreshes_a_changed_input(small_blocks):
    q, k, v = (_layer(6, 10, 25, seed) for seed in (1, 2, 3))
    x = torch.randn(3, 4, 10, dtype=torch.float64, requires_grad=True)
    saved = _saved_feature_major_copies(lambda: [f(x) for f in (q, k, v)])
    value_storages = {layer.values.untyped_storage().data_ptr() for layer in (q, k, v)}
    assert len(saved - value_storages) == 6  # one set of 6 blocks of 2 rows, not three
    z = torch.randn(6, 10, dtype=torch.float64)
    first = q(z)
    z.mul_(2.0)
    torch.testing.assert_close(q(z), _dense_reference(q, z)[0], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(first, q(z))
