"""The kernel on every device and precision (``tests/devices.py``): forward, input, value and bias gradients
against a dense float64 reference, the dtypes each result and each product comes in (the kernel's autocast
policy), int64 CSR indices, and the dtype errors."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sparsenet.sparse import CSRCache, SparseLinear, shared_inputs, sparse_linear
from sparsenet.sparse.csr import INT32_LIMIT
from sparsenet.sparse.functional import KernelDtypes, kernel_dtypes, product_dtype
from tests.devices import DEVICE_PRECISIONS, PRECISIONS, assert_within

aten = torch.ops.aten

CASES = [  # (out, in, nnz, input leading shape)
    (5, 7, 0, (4,)),
    (5, 7, 35, (5,)),
    (9, 4, 11, (2, 3)),
    (30, 20, 50, (2, 5, 3)),
    (64, 128, 300, (17,)),
]
PATHS = {  # name -> (BLOCK_ROWS, BLOCKED_OPERAND_BYTES): which kernel takes a row-major input on the CPU
    "unblocked": None,
    "blocked": (2, 0),  # forward and backward in blocks of 2 rows
    "backward-blocked": (2, 300),  # the (out, n) operands above 300 bytes, the (in, n) ones below for 2 of 4 cases
}


def _layer(out_f, in_f, nnz, seed, bias, device, dtype) -> SparseLinear:
    """A layer with N(0, 1) values and bias, built in float64 and rounded to ``dtype`` on ``device``."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(out_f * in_f, generator=g)[:nnz]
    layer = SparseLinear(in_f, out_f, bias=bias, indices=torch.stack((keys // in_f, keys % in_f)),
                         dtype=torch.float64, generator=g)
    with torch.no_grad():
        layer.values.normal_(generator=g)
        if bias:
            layer.bias.normal_(generator=g)
    return layer.to(device=device, dtype=dtype)


def _check_against_dense(layer, x, precision, device, apply=None) -> None:
    """``apply(x)`` (default ``layer(x)``) under ``precision``: y and the gradients of x, the values and the bias
    within the precision's tolerance of the dense float64 reference, each in its dtype."""
    y = (apply or layer)(x) if precision.autocast is None else _under(precision, device, apply or layer, x)
    assert y.dtype == precision.compute_dtype
    grad_out = torch.randn(y.shape, dtype=torch.float64).to(device=device, dtype=y.dtype)
    y.backward(grad_out)
    weight, x64, g64 = layer.to_dense().double(), x.detach().double(), grad_out.double()
    rows, cols = layer.indices
    bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros(layer.out_features, device=device)
    tol = precision.tolerance
    assert_within(y, x64 @ weight.t() + bias, x64.abs() @ weight.abs().t() + bias.abs(), tol)
    flat_x, flat_g = x64.reshape(-1, layer.in_features), g64.reshape(-1, layer.out_features)
    assert_within(x.grad, g64 @ weight, g64.abs() @ weight.abs(), tol)
    assert_within(layer.values.grad, (flat_g.t() @ flat_x)[rows, cols], (flat_g.abs().t() @ flat_x.abs())[rows, cols],
                  tol)
    assert (x.grad.dtype, layer.values.grad.dtype) == (x.dtype, layer.values.dtype)
    if layer.bias is not None:
        assert_within(layer.bias.grad, flat_g.sum(0), flat_g.abs().sum(0), tol)
        assert layer.bias.grad.dtype == layer.bias.dtype


def _under(precision, device, fn, *args):
    with precision.context(device):
        return fn(*args)


def _path_cases():
    for param in DEVICE_PRECISIONS:
        device, precision = param.values
        for path in PATHS if device == "cpu" else ["unblocked"]:  # batch blocking is the CPU kernel's
            yield pytest.param(device, precision, path, id=f"{param.id}-{path}")


@pytest.mark.parametrize("device,precision,path", list(_path_cases()))
@pytest.mark.parametrize("out_f,in_f,nnz,lead", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_matches_dense_float64_in_every_precision(device, precision, path, out_f, in_f, nnz, lead, bias,
                                                         monkeypatch):
    if PATHS[path] is not None:
        from sparsenet.sparse import functional
        monkeypatch.setattr(functional, "BLOCK_ROWS", PATHS[path][0])
        monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", PATHS[path][1])
    layer = _layer(out_f, in_f, nnz, out_f * 1000 + in_f + nnz, bias, device, precision.dtype)
    x = torch.randn(*lead, in_f, dtype=torch.float64).to(device=device, dtype=precision.dtype).requires_grad_(True)
    _check_against_dense(layer, x, precision, device)


@pytest.mark.parametrize("device,precision", DEVICE_PRECISIONS)
def test_a_chain_of_layers_with_a_low_precision_activation_between_matches_dense(device, precision):
    """Under autocast the second layer's input is the first's output in the autocast dtype (feature-major): its
    input gradient comes back in that dtype and reaches the first layer."""
    first, second = (_layer(12, 10, 40, 1, True, device, precision.dtype),
                     _layer(6, 12, 30, 2, True, device, precision.dtype))
    x = torch.randn(5, 10, dtype=torch.float64).to(device=device, dtype=precision.dtype).requires_grad_(True)
    y = _under(precision, device, lambda: second(torch.relu(first(x))))
    assert y.dtype == precision.compute_dtype
    y.float().square().sum().backward()
    w1, w2 = first.to_dense().double(), second.to_dense().double()
    x64 = x.detach().double().requires_grad_(True)
    hidden = torch.relu(x64 @ w1.t() + first.bias.double())
    expected = hidden @ w2.t() + second.bias.double()
    scale = hidden.abs() @ w2.abs().t() + second.bias.double().abs()  # the first layer's error enters through w2
    assert_within(y, expected, scale + (x64.abs() @ w1.abs().t()) @ w2.abs().t(), precision.tolerance)
    assert x.grad.dtype == x.dtype and first.values.grad.dtype == first.values.dtype
    assert torch.isfinite(x.grad).all() and torch.isfinite(first.values.grad).all()


@pytest.mark.parametrize("device,precision", DEVICE_PRECISIONS)
def test_projections_of_one_input_share_one_copy_in_every_precision(device, precision):
    q, k, v = (_layer(6, 10, 25, seed, True, device, precision.dtype) for seed in (1, 2, 3))
    x = torch.randn(4, 5, 10, dtype=torch.float64).to(device=device, dtype=precision.dtype).requires_grad_(True)
    saved = set()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.add(t.untyped_storage().data_ptr()) or t,
                                                  lambda t: t):
        with shared_inputs(), precision.context(device):
            outputs = [f(x) for f in (q, k, v)]
    assert len(saved - {layer.values.untyped_storage().data_ptr() for layer in (q, k, v)}) == 1
    sum(y.float().sum() for y in outputs).backward()
    grad_shared = x.grad.clone()
    for layer, y in zip((q, k, v), outputs):  # each alone gives the same output and value gradient
        values_grad = layer.values.grad.clone()
        layer.values.grad = None
        x_alone = x.detach().clone().requires_grad_(True)
        y_alone = _under(precision, device, layer, x_alone)
        torch.testing.assert_close(y_alone, y, rtol=0, atol=0)
        y_alone.float().sum().backward()
        torch.testing.assert_close(layer.values.grad, values_grad, rtol=0, atol=0)
        grad_shared -= x_alone.grad
    assert grad_shared.abs().max() <= precision.tolerance * x.grad.abs().max()  # summed before or after rounding


class _ProductDtypes(TorchDispatchMode):
    """Records the dtype of each sparse product's dense operand: ``{"spmm": {...}, "sddmm": {...}}``."""

    def __init__(self):
        super().__init__()
        self.seen = {"spmm": set(), "sddmm": set()}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (aten.addmm.default, aten.addmm.out) and args[1].layout == torch.sparse_csr:
            self.seen["spmm"].add(args[2].dtype)
        elif func is aten.sparse_sampled_addmm.default:
            self.seen["sddmm"].add(args[1].dtype)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("device,precision", DEVICE_PRECISIONS)
@pytest.mark.parametrize("rows", [3, 300])  # 300 rows of 5,000 features: the CPU's blocked path
def test_each_product_runs_in_the_dtype_the_policy_gives_its_device(device, precision, rows):
    layer = _layer(8, 5000, 200, 0, True, device, precision.dtype)
    x = torch.randn(rows, 5000, device=device, dtype=precision.dtype, requires_grad=True)
    with _ProductDtypes() as products:
        y = _under(precision, device, layer, x)
        y.sum().backward()
    device_type = torch.device(device).type
    assert products.seen == {product: {product_dtype(device_type, product, precision.compute_dtype)}
                             for product in ("spmm", "sddmm")}


POLICY = [  # (device type, call dtype) -> (spmm dtype, sddmm dtype)
    ("cpu", torch.float64, torch.float64, torch.float64),
    ("cpu", torch.float32, torch.float32, torch.float32),
    ("cpu", torch.bfloat16, torch.float32, torch.float32),  # MKL's CSR products: no bf16/fp16 kernel
    ("cpu", torch.float16, torch.float32, torch.float32),
    ("cuda", torch.float32, torch.float32, torch.float32),
    ("cuda", torch.bfloat16, torch.bfloat16, torch.float32),  # cuSPARSE SpMM takes bf16; sampled_addmm does not
    ("cuda", torch.float16, torch.float16, torch.float32),
    ("mps", torch.bfloat16, torch.float32, torch.float32),  # a device not in the table: float32
]


@pytest.mark.parametrize("device_type,dtype,spmm,sddmm", POLICY)
def test_the_policy_table(device_type, dtype, spmm, sddmm):
    assert (product_dtype(device_type, "spmm", dtype), product_dtype(device_type, "sddmm", dtype)) == (spmm, sddmm)


def test_the_call_dtype_follows_autocast_and_never_lowers_float64():
    x32, v32, x64, v64 = torch.empty(2, 3), torch.empty(4), torch.empty(2, 3, dtype=torch.float64), \
        torch.empty(4, dtype=torch.float64)
    assert kernel_dtypes(x32, v32) == KernelDtypes(torch.float32, torch.float32, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert kernel_dtypes(x32, v32) == KernelDtypes(torch.bfloat16, torch.float32, torch.float32)
        assert kernel_dtypes(x32.bfloat16(), v32) == KernelDtypes(torch.bfloat16, torch.float32, torch.float32)
        assert kernel_dtypes(x64, v64) == KernelDtypes(torch.float64, torch.float64, torch.float64)
    with torch.autocast("cpu", dtype=torch.float16):
        assert kernel_dtypes(x32, v32).output == torch.float16


BAD_DTYPES = [  # (input dtype, values dtype, autocast dtype or None)
    (torch.bfloat16, torch.float32, None),
    (torch.float16, torch.float32, None),
    (torch.float32, torch.float64, None),
    (torch.float64, torch.float32, None),
    (torch.float64, torch.float32, torch.bfloat16),  # float64 is never lowered, so it must match
    (torch.float32, torch.bfloat16, None),
]


@pytest.mark.parametrize("x_dtype,values_dtype,autocast", BAD_DTYPES)
def test_an_input_of_another_dtype_than_the_values_is_a_one_line_error(x_dtype, values_dtype, autocast):
    layer = SparseLinear(7, 5, density=0.5, dtype=values_dtype)
    x = torch.randn(3, 7, dtype=x_dtype)
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        with pytest.raises(ValueError, match=f"input is {x_dtype} but the layer's values are {values_dtype}"):
            layer(x)


def test_a_backward_run_inside_autocast_keeps_the_policy():
    layer = _layer(9, 4, 20, 0, True, "cpu", torch.float32)
    x = torch.randn(6, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), _ProductDtypes() as products:
        layer(x).sum().backward()
    assert products.seen == {"spmm": {torch.float32}, "sddmm": {torch.float32}}
    assert layer.values.grad.dtype == torch.float32 and torch.isfinite(layer.values.grad).all()


def test_index_dtype_switches_to_int64_where_a_size_or_the_link_count_exceeds_int32():
    from sparsenet.sparse.csr import index_dtype
    for sizes in ((5, 3, INT32_LIMIT - 1), (INT32_LIMIT - 1, 3, 4), (5, INT32_LIMIT - 1, 4)):
        assert index_dtype(*sizes) == torch.int32
        assert index_dtype(*[size + (size == INT32_LIMIT - 1) for size in sizes]) == torch.int64


@pytest.mark.parametrize("in_f,dtype", [(INT32_LIMIT - 1, torch.int32), (INT32_LIMIT, torch.int64)])
def test_a_layer_wider_than_int32_stores_int64_indices_and_keeps_them_through_edits(in_f, dtype):
    """A (3, 2³¹−1) layer holds nothing dense, but its input width is no int32 index (its forward needs an 8 GB
    input, its transposed cache 16 GB of row pointers: the products are checked on int64 indices below)."""
    indices = torch.tensor([[0, 1, 2, 2], [5, in_f - 1, 0, in_f // 2]])
    layer = SparseLinear(in_f, 3, indices=indices)
    assert layer.crow.dtype == layer.col.dtype == dtype
    torch.testing.assert_close(layer.indices, indices, rtol=0, atol=0)
    layer.remove(torch.tensor([True, False, True, True]))
    layer.insert(torch.tensor([[1], [in_f - 2]]))
    assert layer.col.dtype == dtype and layer.indices.tolist() == [[0, 1, 2, 2], [5, in_f - 2, 0, in_f // 2]]
    restored = SparseLinear(in_f, 3, indices=torch.tensor([[0], [0]]))
    restored.load_state_dict(layer.state_dict())
    assert restored.col.dtype == dtype and torch.equal(restored.indices, layer.indices)


@pytest.mark.parametrize("device,precision", [p for p in DEVICE_PRECISIONS if p.values[1] in PRECISIONS[:2]])
def test_the_kernel_with_int64_csr_indices_matches_dense(device, precision):
    """The CSR of a layer of more than 2³¹ links or neurons is int64 (above); its products are those of a small
    layer given int64 indices, checked here against the dense reference."""
    layer = _layer(30, 20, 50, 4, True, device, precision.dtype)
    cache = CSRCache.build(layer.crow.long(), layer.col.long(), layer.shape)
    assert cache.crow_t.dtype == cache.col_t.dtype == cache.perm.dtype == torch.int64
    x = torch.randn(2, 5, 20, dtype=torch.float64).to(device=device, dtype=precision.dtype).requires_grad_(True)
    _check_against_dense(layer, x, precision, device,
                         apply=lambda x_: sparse_linear(x_, layer.values, cache, layer.bias))
