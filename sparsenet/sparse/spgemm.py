"""Sparse × sparse products and sums that return their memory.

On CPU (torch 2.13, MKL) ``torch.sparse.mm`` of two CSR tensors and the sum of two CSR tensors leak
about 8 bytes per output entry per call (pytorch/pytorch#109445; measured: 43 MiB per call for a
5.8M-entry product, never returned, not even by ``malloc_trim``). Link prediction makes such products
once per row block and topology update, so a long run grew without bound. The same operations on COO
tensors (torch's own kernels) return their memory; they take about 2× as long. Operands may be CSR or
COO; results are coalesced COO (sorted row-major, unique).
"""
import torch


def _coo(matrix: torch.Tensor) -> torch.Tensor:
    return matrix.to_sparse_coo() if matrix.layout == torch.sparse_csr else matrix


def sparse_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a (m, k) @ b (k, n)`` of two sparse matrices as coalesced COO ``(m, n)``."""
    return torch.sparse.mm(_coo(a), _coo(b)).coalesce()


def sparse_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` of two sparse ``(m, n)`` matrices as coalesced COO."""
    return (_coo(a) + _coo(b)).coalesce()
