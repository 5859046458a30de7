"""Bipartite scale-free (BSF) topology, and the two fixes of the CHTs paper (equal partition, resort).

Generation (the CHTss paper, arXiv 2501.19107, Appendix D): a Barabási–Albert graph on ``n_in + n_out``
nodes with ``nnz`` edges (each new node brings ``floor(m)`` or ``ceil(m)`` edges, ``m = nnz / (n_in + n_out)``),
built with Batagelj–Brandes' edge-list copy model and resolved by pointer jumping (vectorised, O(nnz log nnz));
nodes are split at random into the two sides; same-side ("frustrated") links are broken into stubs and
the stubs of the two sides are paired into cross links, so degrees, hence the power law, are kept;
finally the count is made exact by adding degree-preferential links or dropping random ones.
"""
import torch

from ..sparse import draw_device, first_occurrence, keys_to_indices, link_count, sample_keys


def _barabasi_albert_edges(n_nodes: int, n_edges: int, generator, device) -> torch.Tensor:
    """``(2, n_edges)`` endpoint pairs of a BA multigraph (self-loops and repeats possible)."""
    k = torch.arange(n_edges, device=device)
    source = torch.div(k * n_nodes, n_edges, rounding_mode="floor")
    # Slot 2k holds edge k's source; slot 2k+1 copies a uniformly chosen earlier slot (degree-preferential).
    pointer = torch.arange(2 * n_edges, device=device)
    pointer[1::2] = (torch.rand(n_edges, generator=generator, device=device) * (2 * k + 1)).long()
    while bool((pointer % 2 == 1).any()):
        pointer = torch.where(pointer % 2 == 1, pointer[pointer], pointer)
    return torch.stack((source, source[pointer[1::2] // 2]))


def _preferential(degrees: torch.Tensor, count: int, generator) -> torch.Tensor:
    """``count`` nodes drawn with probability proportional to ``degree + 1`` (inverse CDF, any size)."""
    cdf = torch.cumsum(degrees.double() + 1.0, 0)
    draws = torch.rand(count, generator=generator, device=degrees.device, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, draws, right=True).clamp(max=degrees.numel() - 1)


def bsf(out_features: int, in_features: int, density: float, generator: torch.Generator | None = None
        ) -> torch.Tensor:
    """Bipartite scale-free links, ``(2, nnz)`` int64 sorted row-major, ``nnz = link_count(...)``."""
    device = draw_device(generator, None)
    nnz = link_count(out_features, in_features, density)
    n_nodes = out_features + in_features
    edges = _barabasi_albert_edges(n_nodes, nnz, generator, device)
    # random sides and random labels within a side (BA's early nodes are its hubs: never keep that order)
    order = torch.randperm(n_nodes, generator=generator, device=device)
    side = torch.zeros(n_nodes, dtype=torch.bool, device=device)  # True: output (row) side
    side[order[:out_features]] = True
    local = torch.empty(n_nodes, dtype=torch.int64, device=device)
    local[order[:out_features]] = torch.arange(out_features, device=device)
    local[order[out_features:]] = torch.arange(in_features, device=device)
    a, b = edges
    cross = side[a] != side[b]
    out_node = torch.where(side[a], a, b)[cross]
    in_node = torch.where(side[a], b, a)[cross]
    stubs = edges[:, ~cross].reshape(-1)
    out_stubs = stubs[side[stubs]]
    in_stubs = stubs[~side[stubs]]
    out_stubs = out_stubs[torch.randperm(out_stubs.numel(), generator=generator, device=device)]
    in_stubs = in_stubs[torch.randperm(in_stubs.numel(), generator=generator, device=device)]
    pairs = min(out_stubs.numel(), in_stubs.numel())
    rows = torch.cat((local[out_node], local[out_stubs[:pairs]]))
    cols = torch.cat((local[in_node], local[in_stubs[:pairs]]))
    keys = (rows * in_features + cols).unique()
    return keys_to_indices(_exact_count(keys, out_features, in_features, nnz, generator), in_features)


def _exact_count(keys: torch.Tensor, out_features: int, in_features: int, nnz: int, generator) -> torch.Tensor:
    """Top up with degree-preferential new links (both ends ∝ degree + 1) or drop uniformly random links."""
    if keys.numel() > nnz:
        drop = sample_keys(keys.numel(), keys.numel() - nnz, generator, keys.device)
        keep = torch.ones(keys.numel(), dtype=torch.bool, device=keys.device)
        keep[drop] = False
        return keys[keep]
    while keys.numel() < nnz:
        missing = nnz - keys.numel()
        rows = torch.div(keys, in_features, rounding_mode="floor")
        row_degree = torch.bincount(rows, minlength=out_features)
        col_degree = torch.bincount(keys % in_features, minlength=in_features)
        new = _preferential(row_degree, missing, generator) * in_features + _preferential(col_degree, missing,
                                                                                           generator)
        merged = torch.cat((keys, new)).unique()
        if merged.numel() > nnz:  # several draws landed on the same new link: keep the first ones
            fresh = new[~torch.isin(new, keys)]
            fresh = fresh[first_occurrence(fresh)][:missing]
            merged = torch.cat((keys, fresh)).unique()
        keys = merged
    return keys



def equal_partition(indices: torch.Tensor, shape: tuple[int, int], generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """Rewire the input side so every input neuron has the mean degree (±1); output degrees are kept.

    Links are taken row by row and assigned input neurons cyclically along a random permutation, so
    a row with d links gets d consecutive, hence distinct, inputs. Returns ``(2, nnz)`` sorted.
    """
    out_features, in_features = shape
    rows = indices[0]
    cycle = torch.randperm(in_features, generator=generator, device=rows.device)
    row_order = torch.randperm(out_features, generator=generator, device=rows.device)
    degree = torch.bincount(rows, minlength=out_features)[row_order]
    new_rows = torch.repeat_interleave(row_order, degree)
    new_cols = cycle[torch.arange(rows.numel(), device=rows.device) % in_features]
    return keys_to_indices((new_rows * in_features + new_cols).sort().values, in_features)


def resort(layers: list[torch.Tensor], shapes: list[tuple[int, int]], generator: torch.Generator | None = None
           ) -> list[torch.Tensor]:
    """Relabel the hidden neurons between consecutive layers so that degrees align.

    For each pair (ℓ, ℓ+1), the input columns of layer ℓ+1 are permuted so that its k-th highest
    out-degree column is the hidden neuron with layer ℓ's k-th highest in-degree (both sorted
    descending, random tie-break). ``layers``: ``(2, nnz_ℓ)`` link lists of a chain, ``shapes``
    ``(out_ℓ, in_ℓ)`` with ``out_ℓ == in_ℓ+1``. Returns new link lists (the first is unchanged).
    """
    result = [layers[0]]
    for (prev_shape, shape), nxt in zip(zip(shapes, shapes[1:]), layers[1:]):
        hidden = prev_shape[0]
        if shape[1] != hidden:
            raise ValueError(f"layers do not chain: {prev_shape} then {shape}")
        in_degree = torch.bincount(result[-1][0], minlength=hidden)
        out_degree = torch.bincount(nxt[1], minlength=hidden)
        by_in = _descending(in_degree, generator)
        by_out = _descending(out_degree, generator)
        relabel = torch.empty_like(by_in)
        relabel[by_out] = by_in
        keys = (nxt[0] * shape[1] + relabel[nxt[1]]).sort().values
        result.append(keys_to_indices(keys, shape[1]))
    return result


def _descending(degree: torch.Tensor, generator) -> torch.Tensor:
    shuffled = torch.randperm(degree.numel(), generator=generator, device=degree.device)
    return shuffled[torch.sort(degree[shuffled], descending=True, stable=True).indices]
