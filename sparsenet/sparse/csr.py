"""CSR caches derived from a row-major sorted link list (never saved, rebuilt after edits)."""
from dataclasses import dataclass

import torch

INT32_LIMIT = 2**31 - 1  # above it, CSR index tensors are int64


@dataclass(frozen=True)
class CSRCache:
    """Compressed forms of one ``(out, in)`` link list.

    crow:   ``(out + 1,)`` row pointers of W (CSR).       col:   ``(nnz,)`` column of each link.
    crow_t: ``(in + 1,)`` row pointers of Wᵀ (CSR of Wᵀ).  col_t: ``(nnz,)`` row of each link in CSC order.
    perm:   ``(nnz,)`` int64, position in CSR order of the k-th link in CSC order (values_t = values[perm]).
    Index tensors are int32 when sizes allow (MKL's fast path), else int64.
    """
    shape: tuple[int, int]
    crow: torch.Tensor
    col: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    perm: torch.Tensor

    @staticmethod
    def build(indices: torch.Tensor, shape: tuple[int, int]) -> "CSRCache":
        """``indices: (2, nnz)`` int64, sorted row-major, unique."""
        out_features, in_features = shape
        rows, cols = indices
        fits = max(indices.shape[1], out_features, in_features) < INT32_LIMIT
        dtype = torch.int32 if fits else torch.int64
        crow = _row_pointers(rows, out_features, dtype)
        perm = torch.sort(cols, stable=True).indices
        crow_t = _row_pointers(cols, in_features, dtype)
        return CSRCache(shape, crow, cols.to(dtype, copy=True), crow_t, rows[perm].to(dtype), perm)

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """W as a ``torch.sparse_csr_tensor`` of shape ``(out, in)`` sharing ``values``."""
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def transposed(self, values: torch.Tensor) -> torch.Tensor:
        """Wᵀ as a ``torch.sparse_csr_tensor`` of shape ``(in, out)``; copies ``values[perm]``."""
        shape_t = (self.shape[1], self.shape[0])
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, values[self.perm], shape_t, check_invariants=False)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.crow, self.col, self.crow_t, self.col_t, self.perm))


def _row_pointers(rows: torch.Tensor, n_rows: int, dtype: torch.dtype) -> torch.Tensor:
    counts = torch.bincount(rows, minlength=n_rows)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=crow[1:])
    return crow.to(dtype)
