"""The compressed link list of one ``(out, in)`` layer and its transposed cache.

A layer's links are stored once, as CSR: ``crow (out + 1,)`` row pointers and ``col (nnz,)`` columns,
sorted row-major and unique — the canonical list itself, not a copy of it. The transposed form that the
input gradient needs (``crow_t``, ``col_t``, ``perm``) is a cache, derived lazily and dropped on every
edit. Index tensors are int32 when sizes allow (MKL's fast path), else int64, so a link costs 4 bytes of
CSR and 8 of transposed cache: 12 bytes of structure, plus O(neurons) pointers.
"""
from dataclasses import dataclass

import torch

INT32_LIMIT = 2**31 - 1  # above it, index tensors are int64


def index_dtype(nnz: int, out_features: int, in_features: int) -> torch.dtype:
    """int32 when every index and count of the layer fits, else int64."""
    return torch.int32 if max(nnz, out_features, in_features) < INT32_LIMIT else torch.int64


def compress(indices: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crow (out + 1,), col (nnz,))`` of ``indices (2, nnz)`` int64 sorted row-major (int32 when sizes
    allow)."""
    dtype = index_dtype(indices.shape[1], *shape)
    return row_pointers(indices[0], shape[0], dtype), indices[1].to(dtype, copy=True)


def expand(crow: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """The link list ``(2, nnz)`` int64 (row, col) of a CSR ``crow``, ``col``: a new, transient tensor."""
    rows = torch.repeat_interleave(torch.arange(crow.numel() - 1, device=crow.device), crow.diff().long(),
                                   output_size=col.numel())
    return torch.stack((rows, col.long()))


def row_pointers(rows: torch.Tensor, n_rows: int, dtype: torch.dtype) -> torch.Tensor:
    """``(n_rows + 1,)`` pointers of the sorted row ids ``rows``."""
    counts = torch.bincount(rows, minlength=n_rows)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=crow[1:])
    return crow.to(dtype)


@dataclass(frozen=True)
class CSRCache:
    """What the kernels need of one layer's links: W's CSR (``crow``, ``col``: the layer's own storage,
    shared) and Wᵀ's, derived from it.

    crow_t: ``(in + 1,)`` row pointers of Wᵀ.   col_t: ``(nnz,)`` row of each link in CSC order.
    perm:   ``(nnz,)`` position in CSR order of the k-th link in CSC order (values_t = values[perm]).
    """
    shape: tuple[int, int]
    crow: torch.Tensor
    col: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    perm: torch.Tensor

    @staticmethod
    def build(crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, int]) -> "CSRCache":
        """The cache of the CSR ``crow (out + 1,)``, ``col (nnz,)``, sorted row-major, unique."""
        rows, cols = expand(crow, col)
        perm = torch.sort(cols, stable=True).indices
        return CSRCache(shape, crow, col, row_pointers(cols, shape[1], col.dtype), rows[perm].to(col.dtype),
                        perm.to(col.dtype))

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """W as a ``torch.sparse_csr_tensor`` of shape ``(out, in)`` sharing ``values``."""
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def transposed(self, values: torch.Tensor) -> torch.Tensor:
        """Wᵀ as a ``torch.sparse_csr_tensor`` of shape ``(in, out)``; copies ``values[perm]``."""
        shape_t = (self.shape[1], self.shape[0])
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, values.index_select(0, self.perm), shape_t,
                                       check_invariants=False)

    def nbytes(self) -> int:
        """Bytes of the derived transposed form (``crow`` and ``col`` are the layer's storage)."""
        return sum(t.numel() * t.element_size() for t in (self.crow_t, self.col_t, self.perm))
