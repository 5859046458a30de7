"""Bipartite receptive field (BRF, CHTss): each smaller-side node samples neighbours near its centre.

Node i of the smaller side is centred at ring position ``round(i * n_large / n_small)`` of the larger
side and draws its neighbours without replacement with probability ∝ ``(1 + d)^(-(1-r)/r)``, d the ring
distance: ``r = 0`` takes the nearest positions (the BSW lattice), ``r = 1`` is uniform (ER-like).
Degrees of the smaller side: ``fixed`` (spread evenly, ±1) or ``uniform`` (one link each, the rest
thrown uniformly at random on nodes). Sampling without replacement is exact successive sampling in
vectorised rounds (``_successive_sample``); memory O(nnz + n_large).
"""
import torch

from ..sparse import draw_device, first_occurrence, link_count
from .ring import centred_windows, orient, spread

DEGREE_DISTRIBUTIONS = ("fixed", "uniform")


def _degrees(nnz: int, n_small: int, n_large: int, degree_dist: str, generator, device) -> torch.Tensor:
    if degree_dist == "fixed":
        return spread(nnz, n_small, device)
    if degree_dist != "uniform":
        raise ValueError(f"unknown degree_dist {degree_dist!r}; choose from {DEGREE_DISTRIBUTIONS}")
    degree = torch.ones(n_small, dtype=torch.int64, device=device)
    remaining = nnz - n_small
    while remaining > 0:  # throw the rest uniformly, re-throwing what overflows a full node
        extra = torch.bincount(torch.randint(n_small, (remaining,), generator=generator, device=device),
                               minlength=n_small)
        degree = torch.minimum(degree + extra, torch.full_like(degree, n_large))
        remaining = nnz - int(degree.sum())
    return degree


def brf(out_features: int, in_features: int, density: float, r: float = 0.25, degree_dist: str = "fixed",
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Bipartite receptive-field links, ``(2, nnz)`` int64 sorted row-major, ``nnz = link_count(...)``."""
    device = draw_device(generator, None)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"r must be in [0, 1], got {r!r}")
    nnz = link_count(out_features, in_features, density)
    n_large, n_small = max(out_features, in_features), min(out_features, in_features)
    if nnz < n_small and degree_dist == "uniform":
        raise ValueError(f"degree_dist='uniform' needs at least {n_small} links, density gives {nnz}")
    degree = _degrees(nnz, n_small, n_large, degree_dist, generator, device)
    centres = torch.round(torch.arange(n_small, device=device, dtype=torch.float64) * (n_large / n_small))
    if r == 0.0:
        small, large = centred_windows(degree, centres, n_large)
        return orient(large, small, out_features, in_features)
    exponent = (1.0 - r) / r
    offsets = torch.arange(n_large, device=device) - (n_large - 1) // 2  # every ring position once
    nearest = torch.sort(offsets.abs(), stable=True).indices  # nearest-first order of the offsets
    weight = torch.exp(-exponent * torch.log1p(offsets[nearest].abs().double()))  # non-increasing
    suffix = torch.flip(torch.cumsum(torch.flip(weight, (0,)), 0), (0,))  # tail sums, small terms first
    keys = _successive_sample(degree, centres.long(), offsets[nearest], suffix, n_large, generator)
    return orient(keys % n_large, torch.div(keys, n_large, rounding_mode="floor"), out_features, in_features)


def _successive_sample(degree, centres, ordered_offsets, suffix, n_large, generator) -> torch.Tensor:
    """Successive sampling without replacement of ``degree[i]`` ring positions for every node i.

    Positions are ranked nearest-first (``ordered_offsets``, weights non-increasing, ``suffix[j]`` the
    weight of ranks >= j). Each node draws from the ranks past its *core* (the longest prefix of ranks it
    already holds), proportionally to weight, and rejects ranks it holds beyond the core: exact, and the
    proposal excludes most of the chosen mass, so rounds stay few. When the weight past the core
    underflows to 0 the nearest free rank is taken (the limit of the law). Returns keys
    ``node * n_large + position``.
    """
    device = degree.device
    n_nodes = degree.numel()
    node = torch.empty(0, dtype=torch.int64, device=device)
    rank = torch.empty(0, dtype=torch.int64, device=device)
    missing = degree.clone()
    while int(missing.sum()) > 0:
        core = _core_sizes(node, rank, n_nodes)
        owner = torch.repeat_interleave(torch.arange(n_nodes, device=device), missing)
        mass = suffix[core[owner].clamp(max=n_large - 1)]
        u = 1.0 - torch.rand(owner.numel(), generator=generator, device=device, dtype=torch.float64)  # (0, 1]
        drawn = torch.searchsorted(-suffix, -(u * mass), right=True) - 1  # last rank with suffix >= u * mass
        pick = torch.where(mass > 0, torch.maximum(drawn, core[owner]), core[owner])
        candidate = owner * n_large + pick
        held = node * n_large + rank
        fresh = ~torch.isin(candidate, held)
        candidate = candidate[fresh]
        candidate = candidate[first_occurrence(candidate)]
        node = torch.cat((node, torch.div(candidate, n_large, rounding_mode="floor")))
        rank = torch.cat((rank, candidate % n_large))
        missing = degree - torch.bincount(node, minlength=n_nodes)
    position = (centres[node] + ordered_offsets[rank]) % n_large
    return node * n_large + position


def _core_sizes(node: torch.Tensor, rank: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Per node, the length of the prefix 0, 1, 2, ... of ranks it holds."""
    core = torch.zeros(n_nodes, dtype=torch.int64, device=node.device)
    if node.numel() == 0:
        return core
    order = torch.argsort(node * (rank.max() + 1) + rank)
    node, rank = node[order], rank[order]
    counts = torch.bincount(node, minlength=n_nodes)
    within = torch.arange(node.numel(), device=node.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts,
                                                                                      counts)
    gap = torch.where(rank != within, within, counts[node])  # first rank that breaks the prefix
    return core.scatter_reduce(0, node, gap, reduce="amin", include_self=False)
