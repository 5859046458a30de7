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
"""
import contextlib
import weakref

import torch
from torch.autograd.function import once_differentiable

from .csr import CSRCache


class _SparseMatmul(torch.autograd.Function):
    """``y_t = W @ x_t + bias`` for ``x_t: (in, n)``, W given by ``values: (nnz,)`` + a ``CSRCache``."""

    @staticmethod
    def forward(ctx, x_t: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None, cache: CSRCache
                ) -> torch.Tensor:
        ctx.cache = cache
        ctx.save_for_backward(x_t, values)
        return forward_product(cache, values, x_t, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y_t: torch.Tensor):
        x_t, values = ctx.saved_tensors
        cache = ctx.cache
        grad_y_t = grad_y_t.contiguous()
        grad_x_t = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x_t = input_grad_product(cache, values, grad_y_t)
        if ctx.needs_input_grad[1]:
            grad_values = values_grad_product(cache, values, grad_y_t, x_t)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_y_t.sum(1)
        return grad_x_t, grad_values, grad_bias, None


class _BlockedSparseMatmul(torch.autograd.Function):
    """``y_t = W @ x_t + bias`` for a row-major ``x: (..., in)`` with the backward in batch blocks of
    ``BLOCK_ROWS`` rows, and the forward too unless ``x_t``, x's contiguous ``(in, n)`` copy, is given (made
    by the caller under its grad mode, so ``shared_inputs()`` shares it with unblocked siblings);
    ``y_t (out, n)`` contiguous, as ``_SparseMatmul``'s. Saves the input blocks, ``(in, rows)`` contiguous
    each (or ``x_t``), when the values need a gradient; returns the input gradient row-major, in ``x``'s
    shape."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None, cache: CSRCache,
                x_t: torch.Tensor | None) -> torch.Tensor:
        blocked_forward = x_t is None
        if blocked_forward:
            parts = batch_blocks(x)
            y_t = x.new_empty(cache.shape[0], sum(block.shape[1] for block in parts))
            for start, block in zip(range(0, y_t.shape[1], BLOCK_ROWS), parts):
                y_t[:, start:start + BLOCK_ROWS] = forward_product(cache, values, block, bias)
        else:
            parts = [x_t]
            y_t = forward_product(cache, values, x_t, bias)
        ctx.cache, ctx.input_shape, ctx.blocked_forward = cache, x.shape, blocked_forward
        ctx.save_for_backward(values, *(parts if ctx.needs_input_grad[1] else ()))  # inputs: for dW only
        return y_t

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y_t: torch.Tensor):
        values, *parts = ctx.saved_tensors
        cache = ctx.cache
        n = grad_y_t.shape[1]
        grad_x = grad_y_t.new_empty(n, cache.shape[1]) if ctx.needs_input_grad[0] else None
        grad_values = torch.zeros_like(values) if ctx.needs_input_grad[1] else None
        transposed = cache.transposed(values) if grad_x is not None else None  # built once for all blocks
        pattern = cache.matrix(torch.zeros_like(values)) if grad_values is not None else None
        for index, start in enumerate(range(0, n, BLOCK_ROWS)):
            grad_block = grad_y_t[:, start:start + BLOCK_ROWS].contiguous()
            if grad_x is not None:
                grad_x[start:start + BLOCK_ROWS] = _csr_times_dense(transposed, grad_block).t()
            if grad_values is not None:
                x_block = parts[index] if ctx.blocked_forward else parts[0][:, start:start + BLOCK_ROWS]
                grad_values += torch.sparse.sampled_addmm(pattern, grad_block, x_block.t(), beta=0.0).values()
        grad_bias = grad_y_t.sum(1) if ctx.needs_input_grad[2] else None
        return None if grad_x is None else grad_x.view(ctx.input_shape), grad_values, grad_bias, None, None


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


def sparse_linear(x: torch.Tensor, values: torch.Tensor, cache: CSRCache, bias: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Apply a sparse layer to ``x: (..., in)``; returns ``(..., out)``.

    ``values: (nnz,)`` in the row-major order of ``cache``; ``bias: (out,)`` or None. A feature-major ``x``
    (a sparse layer's output) goes through unblocked, a large row-major one in batch blocks (see the module
    docstring); the output is feature-major either way, a transposed view of a contiguous ``(out, n)``.
    """
    out_features, in_features = cache.shape
    if x.shape[-1] != in_features:
        raise ValueError(f"input has {x.shape[-1]} features, the layer expects {in_features}")
    lead = x.shape[:-1]
    blocked_forward, blocked_backward = _blocking(x, out_features)
    if blocked_backward:
        x_t = None if blocked_forward else feature_major(x).detach()  # detached: the gradient goes to x itself
        y_t = _BlockedSparseMatmul.apply(x, values, bias, cache, x_t)
    else:
        y_t = _SparseMatmul.apply(feature_major(x), values, bias, cache)
    return y_t.t().reshape(*lead, out_features)


def _blocking(x: torch.Tensor, out_features: int) -> tuple[bool, bool]:
    """``(forward, backward)``: which halves of the kernel take ``x (..., in)`` in batch blocks. Only on CPU
    (the reason is a core's cache; on a GPU the blocks would be extra launches, unmeasured), only a
    row-major ``x`` of more than one block of rows; the forward when its operand ``(in, n)`` exceeds
    ``BLOCKED_OPERAND_BYTES``, the backward then too, or when the input gradient's operand ``(out, n)`` does."""
    rows = x.numel() // max(x.shape[-1], 1)
    if x.device.type != "cpu" or rows <= BLOCK_ROWS or x.shape[-1] == 0 or x.stride(-1) != 1:
        return False, False
    forward = x.shape[-1] * rows * x.element_size() > BLOCKED_OPERAND_BYTES
    return forward, forward or out_features * rows * x.element_size() > BLOCKED_OPERAND_BYTES


_MEMOS: list[dict] = []  # the active block's {(id(input), form): (weakref, (version, grad mode), copy)}


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


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x (..., in)`` as a contiguous ``(in, n)`` matrix (no copy when ``x`` is a sparse layer's output);
    inside ``shared_inputs()`` made once per input tensor (inference tensors, which keep no version counter,
    are not shared)."""
    return _shared(x, "feature-major", lambda: x.reshape(-1, x.shape[-1]).t().contiguous())


def batch_blocks(x: torch.Tensor) -> list[torch.Tensor]:
    """``x (..., in)`` as ``ceil(n / BLOCK_ROWS)`` contiguous ``(in, rows)`` matrices, block ``i`` holding rows
    ``i·BLOCK_ROWS`` onwards of its ``(n, in)`` view (the last one shorter); inside ``shared_inputs()`` made
    once per input tensor."""
    def make():
        rows = x.reshape(-1, x.shape[-1])
        return [rows[start:start + BLOCK_ROWS].t().clone(memory_format=torch.contiguous_format)  # always a copy
                for start in range(0, rows.shape[0], BLOCK_ROWS)]
    return _shared(x, "blocks", make)


def _shared(x: torch.Tensor, form: str, make):
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
