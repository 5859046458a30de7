"""Adjacency structures of one bipartite layer, derived from its link list in O(nnz + Σ degree²) time.

Rows (U, size m) are output neurons, columns (V, size n) input neurons. ``co_u`` / ``co_v`` hold, for
every pair of same-side nodes that share at least one neighbour, the number of neighbours they share
(``C_U = A Aᵀ`` and ``C_V = Aᵀ A`` restricted to their non-zeros), as sorted pair lists: built by one
sparse × sparse product each, so their memory follows the distinct pairs, not the Σ degree² paths (a
hub-heavy 100k² layer: 3.9·10⁷ pairs from 1.3·10⁹ paths). ``wedges``
finds the output pairs sharing two or more inputs without ``C_U``'s pair list, which a layer with a
few high-degree inputs (784 inputs feeding a million neurons) cannot hold.
"""
from dataclasses import dataclass
import functools

import torch

from ..sparse.spgemm import sparse_mm
from ..topology.ring import segment_offsets


@dataclass(frozen=True)
class PairCounts:
    """Sorted pairs ``(first, second)`` of same-side nodes with ``count`` common neighbours (> 0).

    ``keys = first * size + second`` sorted ascending; ``ptr (size + 1,)`` row pointers over ``first``.
    The diagonal (a node with itself, count = its degree) is included.
    """
    size: int
    keys: torch.Tensor
    count: torch.Tensor
    ptr: torch.Tensor

    @property
    def first(self) -> torch.Tensor:
        return torch.div(self.keys, self.size, rounding_mode="floor")

    @property
    def second(self) -> torch.Tensor:
        return self.keys % self.size

    def lookup(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Common-neighbour counts of the given pairs (0 where they share none)."""
        query = first * self.size + second
        position = torch.searchsorted(self.keys, query).clamp(max=max(self.keys.numel() - 1, 0))
        if self.keys.numel() == 0:
            return torch.zeros_like(query)
        return torch.where(self.keys[position] == query, self.count[position], torch.zeros_like(query))


def expand(ptr: torch.Tensor, targets: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each entry of ``nodes``, its neighbours in a CSR (``ptr``, ``targets``).

    Returns ``(source_entry, position)``: for every neighbour, the index into ``nodes`` it came from and
    its position in ``targets`` (so ``targets[position]`` is the neighbour)."""
    counts = ptr[nodes + 1] - ptr[nodes]
    source = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), counts)
    return source, ptr[nodes][source] + segment_offsets(counts)


def _pair_counts(ptr: torch.Tensor, targets: torch.Tensor, size: int) -> PairCounts:
    """Co-neighbour counts among the ``targets`` side: ``Mᵀ M`` for the 0/1 incidence M (other side × size)
    given by the CSR (``ptr``, ``targets``), by one sparse product (exact counts: float64 values)."""
    degree = ptr[1:] - ptr[:-1]
    owner = torch.repeat_interleave(torch.arange(degree.numel(), device=ptr.device), degree)
    ones = torch.ones(targets.numel(), dtype=torch.float64, device=ptr.device)
    incidence = torch.sparse_coo_tensor(torch.stack((owner, targets)), ones, (degree.numel(), size),
                                        check_invariants=False)
    incidence_t = torch.sparse_coo_tensor(torch.stack((targets, owner)), ones, (size, degree.numel()),
                                          check_invariants=False)
    product = sparse_mm(incidence_t.coalesce(), incidence.coalesce())
    first, second = product.indices()
    pair_ptr = torch.zeros(size + 1, dtype=torch.int64, device=ptr.device)
    pair_ptr[1:] = torch.cumsum(torch.bincount(first, minlength=size), 0)
    return PairCounts(size, first * size + second, product.values().round().long(), pair_ptr)


class Wedges:
    """Every pair of inputs ``b < b'`` linked to one output ``j`` (a wedge b–j–b'): Σ_j deg(j)(deg(j) − 1)/2
    entries. Two outputs share c ≥ 2 inputs exactly when they have c(c − 1)/2 wedges with the same key."""

    def __init__(self, graph: "LayerGraph"):
        m, n = graph.shape
        rows, cols = graph.indices
        link = torch.arange(rows.numel(), device=rows.device)
        later = graph.row_ptr[rows + 1] - link - 1                      # links after this one in its row
        first = torch.repeat_interleave(link, later)
        second = first + 1 + segment_offsets(later)
        keys = cols[first] * n + cols[second]                           # b < b': columns sorted within a row
        per_output = graph.degree_u * (graph.degree_u - 1) // 2
        self.ptr = torch.zeros(m + 1, dtype=torch.int64, device=rows.device)   # wedges by output, row-major
        self.ptr[1:] = torch.cumsum(per_output, 0)
        order = torch.argsort(keys, stable=True)
        sorted_keys, self.sorted_owner = keys[order], rows[first][order]
        self.lo = torch.searchsorted(sorted_keys, keys)                 # each wedge's key group in sorted order
        self.group = torch.searchsorted(sorted_keys, keys, right=True) - self.lo

    def shares_per_row(self) -> torch.Tensor:
        """``(m,)`` float64: wedge matches Σ over u's wedges of its key group's size (``shared_pairs``' work)."""
        m = self.ptr.numel() - 1
        owner = torch.repeat_interleave(torch.arange(m, device=self.ptr.device), self.ptr[1:] - self.ptr[:-1])
        return torch.zeros(m, dtype=torch.float64, device=self.ptr.device).index_add_(0, owner, self.group.double())

    def shared_pairs(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs ``u`` in ``[start, stop)`` and ``j != u`` sharing ``c >= 2`` inputs: ``(u - start, j, c)``,
        int64, sorted by (u, j)."""
        m = self.ptr.numel() - 1
        span = slice(int(self.ptr[start]), int(self.ptr[stop]))
        size = self.ptr[start + 1:stop + 1] - self.ptr[start:stop]
        owner = torch.repeat_interleave(torch.arange(stop - start, device=self.ptr.device), size,
                                        output_size=span.stop - span.start)
        group = self.group[span]
        source = torch.repeat_interleave(torch.arange(group.numel(), device=group.device), group)
        j = self.sorted_owner[self.lo[span][source] + segment_offsets(group)]
        u = owner[source]
        keys, matches = torch.unique(u * m + j, return_counts=True)
        u, j = torch.div(keys, m, rounding_mode="floor"), keys % m
        shared = torch.round((1 + torch.sqrt(1 + 8 * matches.double())) / 2).long()  # matches = c (c - 1) / 2
        other = j != u + start
        return u[other], j[other], shared[other]


class LayerGraph:
    """CSR (by output) and CSC (by input) views of a layer's links, degrees and co-neighbour counts.

    indices: ``(2, nnz)`` int64 sorted row-major. ``row_ptr (m + 1,)``, ``col_of_link (nnz,)``;
    ``col_ptr (n + 1,)``, ``link_by_col (nnz,)`` = link positions in column-major order.
    """

    def __init__(self, indices: torch.Tensor, shape: tuple[int, int]):
        self.indices = indices
        self.shape = shape
        m, n = shape
        rows, cols = indices
        self.degree_u = torch.bincount(rows, minlength=m)
        self.degree_v = torch.bincount(cols, minlength=n)
        self.row_ptr = torch.zeros(m + 1, dtype=torch.int64, device=rows.device)
        self.row_ptr[1:] = torch.cumsum(self.degree_u, 0)
        self.col_ptr = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
        self.col_ptr[1:] = torch.cumsum(self.degree_v, 0)
        self.link_by_col = torch.sort(cols, stable=True).indices
        self.rows_by_col = rows[self.link_by_col]
        self._co_u = self._co_v = None

    @property
    def co_u(self) -> PairCounts:
        """Output pairs sharing inputs: ``C_U`` (Σ_b deg(b)² paths, ``pair_bounds()[0]`` pairs at most)."""
        if self._co_u is None:
            self._co_u = _pair_counts(self.col_ptr, self.rows_by_col, self.shape[0])
        return self._co_u

    @property
    def co_v(self) -> PairCounts:
        """Input pairs sharing outputs: ``C_V`` (Σ_j deg(j)² paths, ``pair_bounds()[1]`` pairs at most)."""
        if self._co_v is None:
            self._co_v = _pair_counts(self.row_ptr, self.indices[1], self.shape[1])
        return self._co_v

    def pair_bounds(self) -> tuple[float, float]:
        """Upper bounds on the entries of ``co_u`` and ``co_v``: a node pairs with at most its length-2
        reach (Σ of its neighbours' degrees) and at most every linked node of its side."""
        rows, cols = self.indices
        linked_u, linked_v = float((self.degree_u > 0).sum()), float((self.degree_v > 0).sum())
        reach_u = torch.zeros(self.shape[0], dtype=torch.float64, device=rows.device).index_add_(
            0, rows, self.degree_v[cols].double())
        reach_v = torch.zeros(self.shape[1], dtype=torch.float64, device=rows.device).index_add_(
            0, cols, self.degree_u[rows].double())
        return float(reach_u.clamp(max=linked_u).sum()), float(reach_v.clamp(max=linked_v).sum())

    @functools.cached_property
    def wedges(self) -> Wedges:
        """Input pairs per output (``Wedges``): Σ_j deg(j)² / 2 entries."""
        return Wedges(self)

    def l3_paths_per_row(self) -> torch.Tensor:
        """``(m,)`` number of length-3 paths u–b–j–v from every output u: ``A (Aᵀ d_U)`` by two gathers."""
        rows, cols = self.indices
        through_b = torch.zeros(self.shape[1], dtype=torch.float64, device=rows.device).index_add_(
            0, cols, self.degree_u[rows].double())
        return torch.zeros(self.shape[0], dtype=torch.float64, device=rows.device).index_add_(
            0, rows, through_b[cols])
