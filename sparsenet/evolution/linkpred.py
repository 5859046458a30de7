"""Cannistraci-Hebb link prediction on a bipartite layer, computed in bounded row blocks.

For an absent link between output u and input v, LC(u, v) is the set of intermediate nodes of all
length-3 paths u–b–j–v (b an input linked to u, j an output linked to v and b). With
de(z) = neighbours of z outside LC ∪ {u, v} and di(z) = neighbours inside LC (the CHT paper, ICLR 2024; the CHTss
paper, arXiv 2501.19107, §3.1 eq. 3 and Appendix C):

  CH3-L3p  Σ over paths u–b–j–v of 1 / sqrt((1 + de(b)) (1 + de(j)))     (path-based, CHT/CHTs)
  CH3-L3n  Σ over z in LC of 1 / (1 + de(z))                              (node-based)
  CH2-L3n  Σ over z in LC of (1 + di(z)) / (1 + de(z))                    (node-based, CHTss)

In a bipartite layer 1 + de(j) = deg(j) − C_U[u, j] and 1 + de(b) = deg(b) − C_V[b, v], di(j) = C_U[u, j],
di(b) = C_V[b, v], with C_U = A Aᵀ and C_V = Aᵀ A the co-neighbour counts. So

  node-based: S = E_U A + A E_V,   E_U[u, j] = num(C_U[u, j]) / (deg(j) − C_U[u, j])  (u ≠ j, C_U > 0),
                                   E_V[b, v] = num(C_V[b, v]) / (deg(b) − C_V[b, v])  (b ≠ v, C_V > 0);
  path-based: S = P Q over the links e = (j, b):  P[u, e] = A[u, b] / sqrt(deg(j) − C_U[u, j]),
                                                  Q[e, v] = A[j, v] / sqrt(deg(b) − C_V[b, v]).

C_U and C_V are kept as pair lists (one entry per pair of nodes sharing a neighbour), never as dense
matrices. Where C_U's pair list is too large (a few inputs of high degree: 3.5·10⁹ output pairs for 784
inputs feeding 333k neurons at 10 links per neuron), the node-based E_U A is split by the number c of
inputs u and j share:

  E_U = C_U ∘ G₁ + Δ,   G₁[u, j] = num(1) / (deg(j) − 1),   Δ[u, j] = E_U[u, j] − c G₁[u, j] where c ≥ 2,

so E_U A = A (Aᵀ G₁ A) + Δ A with Aᵀ G₁ A an (n, n) product and Δ found from ``Wedges`` (pairs of
inputs per output; j = u only touches existing links, which score 0).

Rows are scored in blocks; each block is kept dense (a ``(rows, n)`` tensor, for the paper's sizes where
70–95% of absent links score) or sparse (coordinates, for large layers with small degree), chosen per
block from its number of length-3 paths, with memory bounded by ``memory_budget``. Sparse × sparse
products go through COO (``sparse.spgemm``: torch's CSR × CSR leaks memory on CPU); node-based dense
blocks of layers whose longer side squared is at most ``GEMM_WEIGHTS`` use CSR × dense products instead
(faster there; they form C_U and C_V densely, so their cost grows with out² + in², and larger layers, a
64 → 200,000 layer included, don't).
"""
from dataclasses import dataclass
from typing import Iterator

import functools

import torch

from ..sparse.spgemm import sparse_mm, sparse_sum
from .graph import LayerGraph, PairCounts, expand

VARIANTS = ("CH3-L3p", "CH3-L3n", "CH2-L3n")
DENSE_FILL = 0.02  # a block whose rows reach at least this share of inputs by L3 paths is computed dense
PRODUCT_FILL = 1 / 6  # the same, for blocks formed by sparse products: a dense entry costs 4 bytes, a coordinate ~24
DEFAULT_BUDGET = 256 * 2**20
MIN_BLOCKS = 4  # a block never holds more than a quarter of the rows: never an out x in tensor
PATH_FACTOR_BUDGETS = 16  # CH3-L3p's path factors may take this many memory budgets
KIND_WINDOWS = 16  # rows are dense or sparse by the mean reach of their window of m / KIND_WINDOWS rows
GEMM_WEIGHTS = 2**24  # node-based dense blocks use dense products while max(out, in)² is at most this


@dataclass
class ScoreBlock:
    """Scores of absent links for output rows ``[start, stop)``; existing links score 0.

    Exactly one of ``dense`` (``(stop - start, n)`` tensor) and ``sparse`` (``(local_rows, cols, values)``,
    coalesced, positive values only) is set.
    """
    start: int
    stop: int
    dense: torch.Tensor | None = None
    sparse: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown link-prediction variant {variant!r}; choose from {list(VARIANTS)}")


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """CSR from row-sorted coordinates."""
    ptr = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    return torch.sparse_csr_tensor(ptr, cols, values, shape, check_invariants=False)


class _Scorer:
    """Per-layer precomputation shared by all blocks of one variant."""

    def __init__(self, graph: LayerGraph, variant: str, dtype: torch.dtype, memory_budget: int, route: "_Route"):
        self.graph, self.variant, self.dtype, self.memory_budget = graph, variant, dtype, memory_budget
        self.route = route
        m, n = graph.shape
        rows, cols = graph.indices
        self.link_keys = rows * n + cols
        ones = torch.ones(rows.numel(), dtype=dtype, device=rows.device)
        self.a = _csr(rows, cols, ones, (m, n))
        order = graph.link_by_col
        self.a_t = _csr(cols[order], rows[order], ones, (n, m))
        if variant == "CH3-L3p":
            self._prepare_paths()

    @functools.cached_property
    def row_ptr(self) -> list[int]:
        """The layer's CSR row pointers on the host (one transfer, so blocks slice links without a sync)."""
        return self.graph.row_ptr.tolist()

    @functools.cached_property
    def col_ptr(self) -> list[int]:
        """The column pointers (links grouped by input) on the host."""
        return self.graph.col_ptr.tolist()

    def _node_values(self, count: torch.Tensor, external_degree: torch.Tensor) -> torch.Tensor:
        """num / (deg − C) for co-neighbour counts ``count`` > 0 (num = 1, or 1 + C for CH2), else 0."""
        numerator = count + 1.0 if self.variant == "CH2-L3n" else torch.ones_like(count)
        return torch.where(count > 0, numerator / (external_degree - count).clamp(min=1.0), torch.zeros_like(count))

    def _pair_csr(self, pairs: PairCounts, degree: torch.Tensor, intermediate_first: bool, size: int):
        count = pairs.count.to(self.dtype)
        intermediate = pairs.first if intermediate_first else pairs.second
        values = self._node_values(count, degree[intermediate].to(self.dtype))
        values = torch.where(pairs.first == pairs.second, torch.zeros_like(values), values)
        return _csr(pairs.first, pairs.second, values, (size, size))

    @functools.cached_property
    def e_u(self) -> torch.Tensor:
        """E_U as CSR ``(m, m)`` from the co-neighbour pair list (sparse blocks only: O(Σ deg²))."""
        return self._pair_csr(self.graph.co_u, self.graph.degree_u, False, self.graph.shape[0])

    @functools.cached_property
    def e_v(self) -> torch.Tensor:
        """E_V as CSR ``(n, n)``, rows = the intermediate input node b."""
        return self._pair_csr(self.graph.co_v, self.graph.degree_v, True, self.graph.shape[1])

    @functools.cached_property
    def a_g1_a(self) -> torch.Tensor:
        """Aᵀ G₁ A + E_V ``(n, n)``: A[R] times it is S[R] but for Δ's pairs (wedge route); dense when the
        route says so (few inputs), else coalesced COO."""
        g = self.graph
        g1 = self._node_values(torch.ones(g.shape[0], dtype=self.dtype, device=g.row_ptr.device),
                               g.degree_u.to(self.dtype))
        a_t = torch.sparse_csr_tensor(self.a_t.crow_indices(), self.a_t.col_indices(), g1[g.rows_by_col],
                                      self.a_t.shape, check_invariants=False)
        product = sparse_sum(sparse_mm(a_t, self.a), self.e_v)
        return product.to_dense() if self.route.dense_a_g1_a else product

    def _delta_rows(self, start: int, stop: int) -> torch.Tensor:
        """Δ[R] as CSR ``(stop - start, m)``: E_U − c G₁ on output pairs sharing c ≥ 2 inputs."""
        g = self.graph
        u, j, shared = g.wedges.shared_pairs(start, stop)
        degree = g.degree_u[j].to(self.dtype)
        count = shared.to(self.dtype)
        values = self._node_values(count, degree) - count * self._node_values(torch.ones_like(count), degree)
        return _csr(u, j, values, (stop - start, g.shape[0]))

    def _prepare_paths(self):
        g = self.graph
        rows, cols = g.indices
        check_path_scoring(g.indices, g.shape, self.memory_budget)
        link, position = expand(g.row_ptr, cols, rows)                                      # e = (j, b) -> v
        b, v = cols[link], cols[position]
        c_v = g.co_v.lookup(b, v).to(self.dtype)
        q_ptr = torch.zeros(rows.numel() + 1, dtype=torch.int64, device=rows.device)       # link e: deg(j) entries
        q_ptr[1:] = torch.cumsum(g.degree_u[rows], 0)
        values = torch.rsqrt((g.degree_v[b].to(self.dtype) - c_v).clamp(min=1.0))
        self.q = torch.sparse_csr_tensor(q_ptr, v, values, (rows.numel(), g.shape[1]), check_invariants=False)

    # ---- one block of rows ---------------------------------------------------------------------------
    def _p_rows(self, start: int, stop: int) -> torch.Tensor:
        """P[R, :] as CSR ``(stop - start, nnz)``: P[u, e] = 1 / sqrt(deg(j) − C_U[u, j]) for e = (j, b), b ∈ N(u)."""
        g = self.graph
        rows, cols = g.indices
        first = torch.arange(self.row_ptr[start], self.row_ptr[stop], device=rows.device)
        source, position = expand(g.col_ptr, g.link_by_col, cols[first])
        u, e = rows[first][source], g.link_by_col[position]
        j = rows[e]
        c_u = g.co_u.lookup(u, j).to(self.dtype)
        p = torch.rsqrt((g.degree_u[j].to(self.dtype) - c_u).clamp(min=1.0))
        order = torch.argsort((u - start) * rows.numel() + e)
        return _csr(u[order] - start, e[order], p[order], (stop - start, rows.numel()))

    def product(self, start: int, stop: int) -> torch.Tensor:
        """S[R, :] (existing links included) by sparse products: coalesced COO ``(stop - start, n)``, or
        dense when the wedge route keeps Aᵀ G₁ A dense."""
        if self.variant == "CH3-L3p":
            return sparse_mm(self._p_rows(start, stop), self.q)
        a_rows = _row_slice(self.a, start, stop)
        if self.route.wedges:
            delta_a = sparse_mm(self._delta_rows(start, stop), self.a)
            if self.route.dense_a_g1_a:
                return (a_rows @ self.a_g1_a).add_(delta_a.to_dense())
            return sparse_sum(sparse_mm(a_rows, self.a_g1_a), delta_a)
        return sparse_sum(sparse_mm(_row_slice(self.e_u, start, stop), self.a), sparse_mm(a_rows, self.e_v))

    def dense(self, start: int, stop: int) -> torch.Tensor:
        g = self.graph
        links = slice(self.row_ptr[start], self.row_ptr[stop])
        scores = self._node_dense(start, stop) if self.route.gemm else self.product(start, stop).to_dense()
        scores[g.indices[0, links] - start, g.indices[1, links]] = 0.0
        return scores

    def _dense_columns(self, ptr: torch.Tensor, host_ptr: list[int], others: torch.Tensor, start: int, stop: int,
                       height: int) -> torch.Tensor:
        """Columns ``[start, stop)`` of a 0/1 matrix given by a CSR-like (``ptr``, ``others``), as ``(height, k)``;
        ``host_ptr``: ``ptr`` as a list."""
        lo, hi = host_ptr[start], host_ptr[stop]
        owner = torch.repeat_interleave(torch.arange(stop - start, device=ptr.device), ptr[start + 1:stop + 1] -
                                        ptr[start:stop], output_size=hi - lo)
        block = torch.zeros(height, stop - start, dtype=self.dtype, device=ptr.device)
        block[others[lo:hi], owner] = 1.0
        return block

    def _node_dense(self, start: int, stop: int) -> torch.Tensor:
        """S[R] = E_U[R] A + A[R] E_V by CSR × dense products, E_U and E_V formed block by block from
        C_U[R] = A[R] Aᵀ and C_V[:, C] = Aᵀ A[:, C]: no pair lists, so it also serves dense-ish layers."""
        g = self.graph
        m, n = g.shape
        rows, cols = g.indices
        a_rows_t = self._dense_columns(g.row_ptr, self.row_ptr, cols, start, stop, n)  # A[R]ᵀ  (n, R)
        c_u_t = self.a @ a_rows_t                                                         # C_U[R]ᵀ (m, R)
        e_u_t = self._node_values(c_u_t, g.degree_u.to(self.dtype).unsqueeze(1))
        own = torch.arange(start, stop, device=rows.device)
        e_u_t[own, own - start] = 0.0                                                     # j = u
        scores_t = self.a_t @ e_u_t                                                       # (E_U[R] A)ᵀ (n, R)
        a_rows = _row_slice(self.a, start, stop)
        width = max(1, -(-n // MIN_BLOCKS))
        for c0 in range(0, n, width):
            c1 = min(c0 + width, n)
            a_cols = self._dense_columns(g.col_ptr, self.col_ptr, g.rows_by_col, c0, c1, m)  # A[:, C]  (m, k)
            e_v = self._node_values(self.a_t @ a_cols, g.degree_v.to(self.dtype).unsqueeze(1))  # E_V[:, C] (n, k)
            inside = torch.arange(c0, c1, device=rows.device)
            e_v[inside, inside - c0] = 0.0                                               # b = v
            scores_t[c0:c1] += (a_rows @ e_v).t()
        return scores_t.t().contiguous()

    def sparse(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positive scores of absent links in rows ``[start, stop)``: (row − start, col, score), row-major."""
        g = self.graph
        n = g.shape[1]
        product = self.product(start, stop)
        if product.layout == torch.strided:
            product = product.to_sparse()
        (local, cols), values = product.indices(), product.values()
        keep = values > 0
        keys = local * n + cols                                      # sorted: the product is coalesced
        links = self.link_keys[self.row_ptr[start]:self.row_ptr[stop]] - start * n
        found = torch.searchsorted(keys, links).clamp(max=max(keys.numel() - 1, 0))
        if keys.numel():
            keep[found[keys[found] == links]] = False                # existing links: a few per row, not an isin
        chosen = keep.nonzero().squeeze(1)
        return local[chosen], cols[chosen], values[chosen]


def path_factors_fit(entries: float, memory_budget: int = DEFAULT_BUDGET) -> bool:
    """Whether CH3-L3p's ``entries`` path factors (24 bytes each) fit ``PATH_FACTOR_BUDGETS`` budgets."""
    return entries * 24 <= PATH_FACTOR_BUDGETS * memory_budget


def check_path_scoring(indices: torch.Tensor, shape: tuple[int, int], memory_budget: int = DEFAULT_BUDGET) -> None:
    """Raise ``ValueError`` if CH3-L3p's path factors (Σ degree² on both sides, 24 bytes each) would exceed
    16 memory budgets (4 GiB by default): path-based scoring grows with degree cubed."""
    rows, cols = indices
    try:
        check_path_degrees(torch.bincount(rows, minlength=shape[0]), torch.bincount(cols, minlength=shape[1]),
                           memory_budget)
    except ValueError as error:
        raise ValueError(f"CH3-L3p on a {shape[0]}x{shape[1]} layer with {rows.numel():,} links {error}") from None


def check_path_degrees(out_degree: torch.Tensor, in_degree: torch.Tensor, memory_budget: int = DEFAULT_BUDGET
                       ) -> None:
    """``check_path_scoring`` from a layer's degrees ``(out,)`` and ``(in,)`` (exact, or planned mean degrees
    before the layer exists); the error's message goes on from the layer it names ("needs ...")."""
    entries = float((out_degree.double() ** 2).sum() + (in_degree.double() ** 2).sum())
    if not path_factors_fit(entries, memory_budget):
        raise ValueError(f"needs {entries:,.0f} path factors (~{entries * 24 / 2**30:.1f} GiB: degree cubed); use "
                         f"the node-based ch3_l3n or ch2_l3n regrowth (e.g. --regrowth ch2_l3n_soft) at this density")


def _row_slice(matrix: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``[start, stop)`` of a CSR matrix, as a CSR matrix (views of its index arrays)."""
    crow = matrix.crow_indices()
    lo, hi = int(crow[start]), int(crow[stop])
    return torch.sparse_csr_tensor(crow[start:stop + 1] - lo, matrix.col_indices()[lo:hi], matrix.values()[lo:hi],
                                   (stop - start, matrix.shape[1]), check_invariants=False)


@dataclass(frozen=True)
class _Route:
    """How a layer's node-based scores are formed: ``gemm`` — dense blocks by CSR × dense products;
    ``wedges`` — E_U A from Aᵀ G₁ A and Δ instead of C_U's pair list; ``dense_a_g1_a`` — Aᵀ G₁ A kept
    dense (few inputs: A[R] times it is then a CSR × dense product); ``sparse`` — sparse blocks allowed."""
    gemm: bool
    wedges: bool
    dense_a_g1_a: bool
    sparse: bool


def _pair_list_bytes(graph: LayerGraph) -> tuple[float, float]:
    """Peak bytes to build ``C_U``'s and ``C_V``'s pair lists from ``LayerGraph.pair_bounds`` (~40 per pair:
    the product's indices and values, then keys and counts)."""
    pairs_u, pairs_v = graph.pair_bounds()
    return 40 * pairs_u, 40 * pairs_v


def _dense_products_fit(m: int, n: int) -> bool:
    """Whether a ``(m, n)`` layer's node-based dense blocks may use dense products: they form ``(m, rows)``
    blocks of C_U and ``(n, n)`` of C_V, so their work grows with ``m² + n²``, not with ``m · n``."""
    return max(m, n) ** 2 <= GEMM_WEIGHTS


def _route(graph: LayerGraph, variant: str, memory_budget: int) -> _Route:
    """The paper's layers (``max(out, in)² ≤ GEMM_WEIGHTS``) keep dense products for dense blocks and use pair
    lists when they fit the budget, else dense blocks only. Larger layers use only sparse products: by
    pair lists when those fit the budget or cost less than the wedges, else by wedges — never a dense
    product, whose blocks grow with out × in (a 333k² layer asked for a 333k × 83k tensor). A wedge-route
    layer whose dense ``(n, n)`` Aᵀ G₁ A takes at most a quarter budget scores dense blocks."""
    if variant == "CH3-L3p":
        return _Route(gemm=False, wedges=False, dense_a_g1_a=False, sparse=True)
    m, n = graph.shape
    pair_bytes = sum(_pair_list_bytes(graph))
    pairs = pair_bytes <= memory_budget
    if _dense_products_fit(m, n):
        return _Route(gemm=True, wedges=False, dense_a_g1_a=False, sparse=pairs)
    wedges = not pairs and _wedge_bytes(graph) < pair_bytes
    small = wedges and 8 * n * n <= memory_budget // 4
    return _Route(gemm=False, wedges=wedges, dense_a_g1_a=small, sparse=not small)


def planned_structure_bytes(shape: tuple[int, int], links: int, variant: str,
                            memory_budget: int = DEFAULT_BUDGET) -> float:
    """Layer-wide bytes link prediction will hold for a layer of ``shape = (out, in)`` with ``links`` spread
    evenly (mean degrees; a planning figure before the layer exists): CH3-L3p's path factors, or the
    node-based route's pair lists or wedges, chosen as ``_route`` chooses them."""
    m, n = shape
    du, dv = links / m, links / n
    if variant == "CH3-L3p":
        return 24.0 * (m * du * du + n * dv * dv)
    pairs_u, pairs_v = 40.0 * m * min(du * dv, m), 40.0 * n * min(du * dv, n)
    if _dense_products_fit(m, n):
        return pairs_u + pairs_v if pairs_u + pairs_v <= memory_budget else 0.0
    if pairs_u + pairs_v <= memory_budget:
        return pairs_u + pairs_v
    return min(pairs_u + pairs_v, 24.0 * m * du * du + 2 * pairs_v)


def _wedge_bytes(graph: LayerGraph) -> float:
    """Layer-wide bytes of the wedge route: the wedges (~48 per entry), E_V's pair list and Aᵀ G₁ A (at
    most as many entries)."""
    squares = float((graph.degree_u.double() ** 2).sum())
    return 24 * squares + 2 * _pair_list_bytes(graph)[1]


def _blocks(graph: LayerGraph, route: _Route, block_rows: int | None, memory_budget: int, element: int
            ) -> list[tuple[int, int, bool, bool]]:
    """Row ranges ``(start, stop, dense, scored)``, each within ``memory_budget`` bytes.

    Whether rows are dense is decided per window of ``m / KIND_WINDOWS`` rows (rows decided one by one
    alternated in trained layers: 490 blocks for one 3,333² layer, each repeating E_V's dense products).
    A row without length-3 paths scores 0 everywhere: it joins the run before it (never splits one)
    and a block of such rows only is not scored. Node-based sparse blocks need the layer's pair lists
    or wedges; when neither fits (dense-ish layers: Σ degree² grows with density squared) every scored
    row is computed dense by dense products, which need none.
    """
    m, n = graph.shape
    paths = graph.l3_paths_per_row()
    has_paths = paths > 0
    dense_row = 3 * n + (m if route.gemm else 0)
    if route.sparse:  # the kind is decided per window of rows: rows near the threshold would alternate
        window = torch.div(torch.arange(m, device=paths.device), -(-m // KIND_WINDOWS), rounding_mode="floor")
        reach = torch.zeros(int(window[-1]) + 1, dtype=paths.dtype, device=paths.device).index_add_(
            0, window, torch.minimum(paths, torch.tensor(float(n)))) / torch.bincount(window)
        dense_leaning = (reach >= (DENSE_FILL if route.gemm else PRODUCT_FILL) * n)[window]
    else:
        dense_leaning = has_paths
    if bool(has_paths.any()):  # rows without paths take the kind of the last row with paths (the first: the next)
        last = torch.cummax(torch.where(has_paths, torch.arange(m, device=paths.device), -1), 0).values
        dense_leaning = dense_leaning[torch.where(last < 0, has_paths.nonzero()[0, 0], last)]
    sparse_row = torch.minimum(paths, torch.tensor(float(n))) * 24
    sparse_row += graph.wedges.shares_per_row() * 40 if route.wedges else graph.degree_u.double() ** 2 * 48
    block_rows = min(block_rows or m, max(1, -(-m // MIN_BLOCKS)))
    # the per-row walk runs on host copies: three transfers per layer, not one sync per row
    dense_leaning, sparse_row, has_paths = dense_leaning.tolist(), sparse_row.tolist(), has_paths.tolist()
    blocks, start = [], 0
    while start < m:
        dense = dense_leaning[start]
        stop, used = start, 0.0
        while stop < m and dense_leaning[stop] == dense:
            cost = dense_row * element + (0.0 if route.gemm else sparse_row[stop]) if dense else sparse_row[stop]
            if stop > start and (used + cost > memory_budget or stop - start >= block_rows):
                break
            used += cost
            stop += 1
        blocks.append((start, stop, dense, any(has_paths[start:stop])))
        start = stop
    return blocks


def ch_score_blocks(indices: torch.Tensor, shape: tuple[int, int], variant: str = "CH3-L3n",
                    block_rows: int | None = None, memory_budget: int = DEFAULT_BUDGET,
                    dtype: torch.dtype = torch.float32) -> Iterator[ScoreBlock]:
    """Yield ``ScoreBlock`` s covering all output rows in order (see module docstring).

    ``indices: (2, nnz)`` int64 sorted row-major; ``block_rows`` caps rows per block (else the budget
    alone decides); ``memory_budget`` bounds a block's working memory in bytes.
    """
    _check_variant(variant)
    graph = LayerGraph(indices, shape)
    route = _route(graph, variant, memory_budget)
    scorer = _Scorer(graph, variant, dtype, memory_budget, route)
    element = torch.tensor([], dtype=dtype).element_size()
    for start, stop, dense, scored in _blocks(graph, route, block_rows, memory_budget, element):
        if not scored:
            nothing = torch.empty(0, dtype=torch.int64, device=indices.device)
            yield ScoreBlock(start, stop, sparse=(nothing, nothing, torch.empty(0, dtype=dtype, device=indices.device)))
        elif dense:
            yield ScoreBlock(start, stop, dense=scorer.dense(start, stop))
        else:
            yield ScoreBlock(start, stop, sparse=scorer.sparse(start, stop))


def ch_scores(indices: torch.Tensor, shape: tuple[int, int], variant: str = "CH3-L3n",
              block_rows: int | None = None) -> torch.Tensor:
    """CH scores of absent links as a coalesced ``torch.sparse_coo_tensor`` of ``shape``.

    ``indices: LongTensor (2, nnz)`` row-major sorted unique links (row = output, col = input);
    ``variant``: "CH3-L3p", "CH3-L3n" or "CH2-L3n". Holds only strictly positive scores of absent links,
    in float64. Built from ``ch_score_blocks`` (for inspection and tests; training streams the blocks).
    """
    rows, cols, values = [], [], []
    for block in ch_score_blocks(indices, shape, variant, block_rows, dtype=torch.float64):
        if block.dense is not None:
            local, col = block.dense.nonzero(as_tuple=True)
            value = block.dense[local, col]
        else:
            local, col, value = block.sparse
        rows.append(local + block.start)
        cols.append(col)
        values.append(value)
    device = indices.device
    coordinates = torch.stack((torch.cat(rows), torch.cat(cols))) if rows else torch.empty(2, 0, dtype=torch.int64,
                                                                                             device=device)
    data = torch.cat(values) if values else torch.empty(0, dtype=torch.float64, device=device)
    return torch.sparse_coo_tensor(coordinates, data, shape, check_invariants=False).coalesce()
