"""Bipartite small-world (BSW) topology: a ring lattice with a share ``beta`` of links rewired.

Lattice (beta = 0): the ``nnz`` links are spread over the larger side's nodes (``spread``: degrees
differ by at most one); node j of the larger side links to its degree's worth of consecutive
smaller-side nodes centred at ring position ``j * n_small / n_large``. Rewiring: every link is removed
independently with probability ``beta`` and as many links are placed uniformly at random on positions
not held by a kept link, so ``beta = 1`` is exactly Erdős–Rényi and nnz never changes.
"""
import torch

from ..sparse import draw_device, keys_to_indices, link_count, sample_absent_keys
from .ring import centred_windows, orient, spread


def lattice(out_features: int, in_features: int, nnz: int, device=None) -> torch.Tensor:
    """The beta = 0 ring lattice with exactly ``nnz`` links; ``(2, nnz)`` sorted row-major."""
    n_large, n_small = max(out_features, in_features), min(out_features, in_features)
    centres = torch.arange(n_large, device=device, dtype=torch.float64) * (n_small / n_large)
    large, small = centred_windows(spread(nnz, n_large, device), centres, n_small)
    return orient(large, small, out_features, in_features)


def bsw(out_features: int, in_features: int, density: float, beta: float = 0.25,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Bipartite small-world links, ``(2, nnz)`` int64 sorted row-major, ``nnz = link_count(...)``.

    ``beta`` in [0, 1]: the rewiring probability (the paper's default 0.25). O(nnz) time and memory.
    """
    device = draw_device(generator, None)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    nnz = link_count(out_features, in_features, density)
    indices = lattice(out_features, in_features, nnz, device)
    keep = torch.rand(nnz, generator=generator, device=device) >= beta
    kept_keys = indices[0, keep] * in_features + indices[1, keep]
    rewired = sample_absent_keys(kept_keys, out_features * in_features, nnz - kept_keys.numel(), generator)
    keys = torch.cat((kept_keys, rewired)).sort().values
    return keys_to_indices(keys, in_features)
