"""The sparse linear kernel: ``y = x Wᵀ + b`` with W stored as links, forward and backward sparse.

Activations go through the kernel feature-major, ``(features, batch)``: ``torch.sparse.mm`` of a CSR
matrix with a contiguous ``(in, batch)`` matrix is the fast path (about 2x over a transposed view). The
output is returned as a transposed view, so a following sparse layer finds its input feature-major
already and the transpose costs nothing. Inside ``shared_inputs()``, layers applied to the same input
tensor (Q, K and V of one attention input, a decoder's cross-attention K and V of the encoder memory, a
user model's q/k/v_proj) share one feature-major copy: it is made once, saved once for their backward, and
their input gradients are summed before the one transpose back.

Batch blocking: a CSR product is slowest when its dense operand, ``(features, batch)``, does not fit in a
core's cache (measured on an Intel Xeon, 2 threads: W 512×2048 at 90% times a (2048, 1024) operand 8.0 ms,
times the same operand as eight contiguous (2048, 128) pieces 2.8 ms; ``benchmarks/product_forms.py``'s
form D). So a row-major input of more than ``BLOCK_ROWS`` rows whose operands exceed
``BLOCKED_OPERAND_BYTES`` goes through the kernel in blocks of ``BLOCK_ROWS`` rows: each block transposed
into its own contiguous ``(in, rows)`` matrix (the same bytes the unblocked path copies), the products done
per block, each block's output copied into its columns of the feature-major output, and the input
gradient written row-major, the layout the input came in. A feature-major input (a sparse layer's output)
keeps the unblocked path, which needs no copy at all.

Precision: custom autograd Functions are not autocast-aware, so the kernel declares its own policy
(``kernel_dtypes``). A call's dtype is the autocast dtype when autocast is on for the input's device (as for
``nn.Linear``), else the input's, which must then be the values' dtype. Each product runs in that dtype where
the device has a kernel for it (``LOW_PRECISION_PRODUCTS``: cuSPARSE's CSR product takes bf16/fp16) and in
float32 where it has none (the CPU's MKL CSR products; ``torch.sparse.sampled_addmm`` on CUDA); the output is
in the call's dtype, the input gradient in the input's, the values' and bias's gradients in theirs (float32
master weights under autocast). Float64 is never lowered.
"""
import contextlib
import weakref
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from .csr import CSRCache


class _SparseMatmul(torch.autograd.Function):
    """``y_t = W @ x_t + bias`` for ``x_t: (in, n)`` contiguous in ``dtypes.spmm``, W given by ``values: (nnz,)`` +
    a ``CSRCache``; ``y_t (out, n)`` in ``dtypes.output``."""

    @staticmethod
    def forward(ctx, x_t: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None, cache: CSRCache,
                dtypes: "KernelDtypes") -> torch.Tensor:
        ctx.cache, ctx.dtypes = cache, dtypes
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.save_for_backward(x_t, values)
        with _autocast_off(x_t.device.type):
            return forward_product(cache, values.to(dtypes.spmm), x_t, _cast(bias, dtypes.spmm)).to(dtypes.output)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y_t: torch.Tensor):
        x_t, values = ctx.saved_tensors
        cache, dtypes = ctx.cache, ctx.dtypes
        grad_x_t = grad_values = grad_bias = None
        grad_y_t = _contiguous(grad_y_t, dtypes.spmm)
        if ctx.needs_input_grad[0]:
            grad_x_t = input_grad_product(cache, values.to(dtypes.spmm), grad_y_t)
        if ctx.needs_input_grad[1]:
            grad_values = values_grad_product(cache, values.to(dtypes.sddmm), grad_y_t.to(dtypes.sddmm),
                                              x_t.to(dtypes.sddmm)).to(values.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_y_t.sum(1, dtype=ctx.bias_dtype)
        return grad_x_t, grad_values, grad_bias, None, None


class _BlockedSparseMatmul(torch.autograd.Function):
    """``y_t = W @ x_t + bias`` for a row-major ``x: (..., in)`` with the backward in batch blocks of
    ``BLOCK_ROWS`` rows, and the forward too unless ``x_t``, x's contiguous ``(in, n)`` copy in ``dtypes.spmm``, is
    given (made by the caller under its grad mode, so ``shared_inputs()`` shares it with unblocked siblings);
    ``y_t (out, n)`` contiguous in ``dtypes.output``, as ``_SparseMatmul``'s. Saves the input blocks, ``(in, rows)``
    contiguous each in ``dtypes.spmm`` (or ``x_t``), when the values need a gradient; returns the input gradient
    row-major, in ``x``'s shape and dtype."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None, cache: CSRCache,
                x_t: torch.Tensor | None, dtypes: "KernelDtypes") -> torch.Tensor:
        blocked_forward = x_t is None
        with _autocast_off(x.device.type):
            weights, bias_ = values.to(dtypes.spmm), _cast(bias, dtypes.spmm)
            if blocked_forward:
                parts = batch_blocks(x, dtypes.spmm)
                y_t = x.new_empty(cache.shape[0], sum(block.shape[1] for block in parts), dtype=dtypes.output)
                for start, block in zip(range(0, y_t.shape[1], BLOCK_ROWS), parts):
                    y_t[:, start:start + BLOCK_ROWS] = forward_product(cache, weights, block, bias_)
            else:
                parts = [x_t]
                y_t = forward_product(cache, weights, x_t, bias_).to(dtypes.output)
        ctx.cache, ctx.input_shape, ctx.blocked_forward, ctx.dtypes = cache, x.shape, blocked_forward, dtypes
        ctx.input_dtype, ctx.bias_dtype = x.dtype, None if bias is None else bias.dtype
        ctx.save_for_backward(values, *(parts if ctx.needs_input_grad[1] else ()))  # inputs: for dW only
        return y_t

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y_t: torch.Tensor):
        values, *parts = ctx.saved_tensors
        cache, dtypes = ctx.cache, ctx.dtypes
        n = grad_y_t.shape[1]
        grad_x = grad_y_t.new_empty(n, cache.shape[1], dtype=ctx.input_dtype) if ctx.needs_input_grad[0] else None
        grad_values = values.new_zeros(values.shape, dtype=dtypes.sddmm) if ctx.needs_input_grad[1] else None
        transposed = cache.transposed(values.to(dtypes.spmm)) if grad_x is not None else None  # once for all
        pattern = cache.matrix(values.new_zeros(values.shape, dtype=dtypes.sddmm)) if grad_values is not None \
            else None
        for index, start in enumerate(range(0, n, BLOCK_ROWS)):
            grad_block = _contiguous(grad_y_t[:, start:start + BLOCK_ROWS], dtypes.spmm)
            if grad_x is not None:
                grad_x[start:start + BLOCK_ROWS] = _csr_times_dense(transposed, grad_block).t()
            if grad_values is not None:
                x_block = parts[index] if ctx.blocked_forward else parts[0][:, start:start + BLOCK_ROWS]
                grad_values += torch.sparse.sampled_addmm(pattern, grad_block.to(dtypes.sddmm),
                                                          x_block.t().to(dtypes.sddmm), beta=0.0).values()
        grad_bias = grad_y_t.sum(1, dtype=ctx.bias_dtype) if ctx.needs_input_grad[2] else None
        grad_x = None if grad_x is None else grad_x.view(ctx.input_shape)
        return grad_x, None if grad_values is None else grad_values.to(values.dtype), grad_bias, None, None, None


def _csr_times_dense(matrix: torch.Tensor, dense: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``matrix @ dense`` for a CSR ``matrix (m, k)`` and a contiguous ``dense (k, n)``, written into ``out``
    (a contiguous ``(m, n)`` tensor; a fresh uninitialised one when None) passed as both addmm's ``input``
    and ``out``: with beta=0 its old contents are not read (garbage, NaN included, cannot leak in), and
    addmm skips the ``(m, n)`` copy of ``input`` into a separate result that the out-of-place form makes
    (~15% of the product at 99% sparsity and 1,024 rows, measured on the MKL CPU build). Not differentiable
    (``out=`` forms refuse autograd): the autograd Function calls it with grad disabled."""
    if out is None:
        out = dense.new_empty(matrix.shape[0], dense.shape[1])
    return torch.addmm(out, matrix, dense, beta=0.0, out=out)


def forward_product(cache: CSRCache, values: torch.Tensor, x_t: torch.Tensor, bias: torch.Tensor | None
                    ) -> torch.Tensor:
    """The forward product ``W @ x_t (+ bias[:, None])``: ``x_t (in, n)`` contiguous -> ``(out, n)``.

    The three products are the kernel's building blocks, not differentiable themselves: pass detached
    ``values`` (``layer.values.detach()``), or call ``sparse_linear`` for autograd."""
    if bias is None:
        return _csr_times_dense(cache.matrix(values), x_t)
    return torch.addmm(bias.unsqueeze(1), cache.matrix(values), x_t)


def input_grad_product(cache: CSRCache, values: torch.Tensor, grad_y_t: torch.Tensor) -> torch.Tensor:
    """The input-gradient product ``Wᵀ @ grad_y_t``: ``grad_y_t (out, n)`` contiguous -> ``(in, n)``."""
    return _csr_times_dense(cache.transposed(values), grad_y_t)


def values_grad_product(cache: CSRCache, values: torch.Tensor, grad_y_t: torch.Tensor, x_t: torch.Tensor
                        ) -> torch.Tensor:
    """The links' gradient ``(grad_y_t @ x_tᵀ)`` sampled on W's links: ``(nnz,)`` in ``values``' order, from
    ``grad_y_t (out, n)`` and ``x_t (in, n)``, both contiguous (the CPU kernel reads its second operand as
    ``x_t`` rows, so no transpose is made)."""
    pattern = cache.matrix(torch.zeros_like(values))  # beta=0 still multiplies: keep NaN/inf out
    return torch.sparse.sampled_addmm(pattern, grad_y_t, x_t.t(), beta=0.0).values()


BLOCK_ROWS = 128  # rows per batch block (64-256 measured within 10% of each other at 90% and 1,024 rows)
BLOCKED_OPERAND_BYTES = 2 * 2**20  # block when a product's (features, n) operand is larger: about a core's L2

LOW_PRECISION = (torch.bfloat16, torch.float16)
# The products that have a bf16/fp16 kernel, per device type: "spmm" (CSR times dense: the forward and the input
# gradient) has one in cuSPARSE; "sddmm" (torch.sparse.sampled_addmm: the values' gradient) has none on CUDA
# (pytorch#164666); the CPU's MKL CSR products have none. A product without one runs in float32.
LOW_PRECISION_PRODUCTS: dict[str, frozenset[str]] = {"cuda": frozenset({"spmm"})}


@dataclass(frozen=True)
class KernelDtypes:
    """The dtypes of one kernel call: ``output``, y's (the call's dtype); ``spmm``, the CSR products' (forward and
    input gradient, and the saved input copy's); ``sddmm``, the values-gradient product's."""
    output: torch.dtype
    spmm: torch.dtype
    sddmm: torch.dtype


def kernel_dtypes(x: torch.Tensor, values: torch.Tensor) -> KernelDtypes:
    """The dtypes of applying a layer of ``values`` to ``x`` (the policy in the module docstring). Raises
    ValueError for an input whose dtype differs from the values' outside autocast."""
    device_type = x.device.type
    autocast = torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)
    if autocast and torch.float64 not in (x.dtype, values.dtype):
        dtype = torch.get_autocast_dtype(device_type)
    elif x.dtype != values.dtype:
        raise ValueError(f"input is {x.dtype} but the layer's values are {values.dtype}: convert one of them, "
                         f"or run under torch.autocast")
    else:
        dtype = x.dtype
    return KernelDtypes(dtype, product_dtype(device_type, "spmm", dtype), product_dtype(device_type, "sddmm", dtype))


def product_dtype(device_type: str, product: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype ``product`` ("spmm" or "sddmm") runs in on ``device_type`` for a call in ``dtype``: ``dtype``
    itself unless it is bf16/fp16 and the device has no such kernel (``LOW_PRECISION_PRODUCTS``), then float32."""
    if dtype in LOW_PRECISION and product not in LOW_PRECISION_PRODUCTS.get(device_type, ()):
        return torch.float32
    return dtype


def sparse_linear(x: torch.Tensor, values: torch.Tensor, cache: CSRCache, bias: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Apply a sparse layer to ``x: (..., in)``; returns ``(..., out)``.

    ``values: (nnz,)`` in the row-major order of ``cache``; ``bias: (out,)`` or None. A feature-major ``x``
    (a sparse layer's output) goes through unblocked, a large row-major one in batch blocks (see the module
    docstring); the output is feature-major either way, a transposed view of a contiguous ``(out, n)``, in the
    call's dtype (``kernel_dtypes``: the autocast dtype under autocast, else ``x``'s, which must be ``values``').
    """
    out_features, in_features = cache.shape
    if x.shape[-1] != in_features:
        raise ValueError(f"input has {x.shape[-1]} features, the layer expects {in_features}")
    dtypes = kernel_dtypes(x, values)
    lead = x.shape[:-1]
    blocked_forward, blocked_backward = _blocking(x, out_features, dtypes.spmm)
    if blocked_backward:  # x_t detached: the gradient goes to x itself
        x_t = None if blocked_forward else feature_major(x, dtypes.spmm).detach()
        y_t = _BlockedSparseMatmul.apply(x, values, bias, cache, x_t, dtypes)
    else:
        y_t = _SparseMatmul.apply(feature_major(x, dtypes.spmm), values, bias, cache, dtypes)
    return y_t.t().reshape(*lead, out_features)


def _blocking(x: torch.Tensor, out_features: int, dtype: torch.dtype | None = None) -> tuple[bool, bool]:
    """``(forward, backward)``: which halves of the kernel take ``x (..., in)`` in batch blocks, for products in
    ``dtype`` (default ``x``'s). Only on CPU (the reason is a core's cache; on a GPU the blocks would be extra
    launches, unmeasured), only a row-major ``x`` of more than one block of rows; the forward when its operand
    ``(in, n)`` exceeds ``BLOCKED_OPERAND_BYTES``, the backward then too, or when the input gradient's operand
    ``(out, n)`` does."""
    rows = x.numel() // max(x.shape[-1], 1)
    if x.device.type != "cpu" or rows <= BLOCK_ROWS or x.shape[-1] == 0 or x.stride(-1) != 1:
        return False, False
    size = (dtype or x.dtype).itemsize
    forward = x.shape[-1] * rows * size > BLOCKED_OPERAND_BYTES
    return forward, forward or out_features * rows * size > BLOCKED_OPERAND_BYTES


def _autocast_off(device_type: str):
    """A block in which autocast is off for ``device_type`` (the kernel chooses its dtypes itself: autocast
    would lower the CSR products to a dtype the device may have no kernel for)."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _cast(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``tensor`` in ``dtype`` (itself when it already is; None stays None)."""
    return None if tensor is None else tensor.to(dtype)


def _contiguous(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` contiguous in ``dtype``: at most one copy (none when it already is)."""
    if tensor.dtype == dtype:
        return tensor.contiguous()
    return tensor.to(dtype, memory_format=torch.contiguous_format)


_MEMOS: list[dict] = []  # the active block's {(id(input), (form, dtype)): (weakref, (version, grad mode), copy)}


@contextlib.contextmanager
def shared_inputs():
    """Within this block, sparse layers applied to the same input tensor share its feature-major copy (one
    copy made and saved for backward instead of one per layer). A copy lives while its input lives, and at
    most until the block ends; an input changed in place since, or used in another grad mode, gets a fresh
    one. Nested blocks share the outer block's copies. The models wrap their forward in it; wrap your own
    model's forward (``with shared_inputs(): loss = model(x)``) to share its q/k/v projections' inputs."""
    if _MEMOS:
        yield
        return
    _MEMOS.append({})
    try:
        yield
    finally:
        _MEMOS.pop().clear()  # the entries' weakref callbacks refer to the memo: break the cycle now


def feature_major(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x (..., in)`` as a contiguous ``(in, n)`` matrix in ``dtype`` (default ``x``'s; no copy when ``x`` is a
    sparse layer's output of that dtype); inside ``shared_inputs()`` made once per input tensor and dtype
    (inference tensors, which keep no version counter, are not shared)."""
    dtype = dtype or x.dtype
    return _shared(x, ("feature-major", dtype), lambda: _contiguous(x.reshape(-1, x.shape[-1]).t(), dtype))


def batch_blocks(x: torch.Tensor, dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """``x (..., in)`` as ``ceil(n / BLOCK_ROWS)`` contiguous ``(in, rows)`` matrices in ``dtype`` (default ``x``'s),
    block ``i`` holding rows ``i·BLOCK_ROWS`` onwards of its ``(n, in)`` view (the last one shorter); inside
    ``shared_inputs()`` made once per input tensor and dtype."""
    dtype = dtype or x.dtype

    def make():
        rows = x.reshape(-1, x.shape[-1])
        return [rows[start:start + BLOCK_ROWS].t().to(dtype, memory_format=torch.contiguous_format, copy=True)
                for start in range(0, rows.shape[0], BLOCK_ROWS)]  # always a copy, even of a one-row block
    return _shared(x, ("blocks", dtype), make)


def _shared(x: torch.Tensor, form: tuple[str, torch.dtype], make):
    """``make()``, the ``form`` of ``x`` the kernel reads, shared inside ``shared_inputs()`` while ``x`` lives
    unchanged; a form that is ``x``'s own storage (no copy made) is not kept."""
    memo = _MEMOS[-1] if _MEMOS and not x.is_inference() else None
    key = None if memo is None else (x._version, torch.is_grad_enabled())
    ident = (id(x), form)
    if memo is not None and ident in memo:
        alive, saved_key, made = memo[ident]
        if alive() is x and saved_key == key:
            return made
    made = make()
    copied = all(t.data_ptr() != x.data_ptr() for t in (made if isinstance(made, list) else [made]))
    if memo is not None and copied:
        memo[ident] = (weakref.ref(x, lambda _: memo.pop(ident, None)), key, made)
    return made
