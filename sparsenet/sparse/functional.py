"""The sparse linear kernel: ``y = x Wᵀ + b`` with W stored as links, forward and backward sparse.

Activations go through the kernel feature-major, ``(features, batch)``: ``torch.sparse.mm`` of a CSR
matrix with a contiguous ``(in, batch)`` matrix is the fast path (about 2x over a transposed view). The
output is returned as a transposed view, so a following sparse layer finds its input feature-major
already and the transpose costs nothing. Inside ``shared_inputs()``, layers applied to the same input
tensor (Q, K and V of one attention input, a decoder's cross-attention K and V of the encoder memory, a
user model's q/k/v_proj) share one feature-major copy: it is made once, saved once for their backward, and
their input gradients are summed before the one transpose back.
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


def sparse_linear(x: torch.Tensor, values: torch.Tensor, cache: CSRCache, bias: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Apply a sparse layer to ``x: (..., in)``; returns ``(..., out)``.

    ``values: (nnz,)`` in the row-major order of ``cache``; ``bias: (out,)`` or None.
    """
    out_features, in_features = cache.shape
    if x.shape[-1] != in_features:
        raise ValueError(f"input has {x.shape[-1]} features, the layer expects {in_features}")
    lead = x.shape[:-1]
    y_t = _SparseMatmul.apply(feature_major(x), values, bias, cache)
    return y_t.t().reshape(*lead, out_features)


_MEMOS: list[dict] = []  # the active shared_inputs() block's {id(input): (weakref, (version, grad mode), copy)}


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
        _MEMOS.pop()


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x (..., in)`` as a contiguous ``(in, n)`` matrix (no copy when ``x`` is a sparse layer's output);
    inside ``shared_inputs()`` made once per input tensor (inference tensors, which keep no version counter,
    are not shared)."""
    memo = _MEMOS[-1] if _MEMOS and not x.is_inference() else None
    key = None if memo is None else (x._version, torch.is_grad_enabled())
    if memo is not None and id(x) in memo:
        alive, saved_key, x_t = memo[id(x)]
        if alive() is x and saved_key == key:
            return x_t
    x_t = x.reshape(-1, x.shape[-1]).t().contiguous()
    if memo is not None and x_t.data_ptr() != x.data_ptr():  # a copy was made: share it while x lives
        ident = id(x)
        memo[ident] = (weakref.ref(x, lambda _: memo.pop(ident, None)), key, x_t)
    return x_t
