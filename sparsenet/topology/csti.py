"""Correlated sparse topological initialisation (CSTI, from CHT): link inputs that correlate.

The ``n x n`` matrix C of |Pearson correlation| between the ``n`` input features (constant features
and the diagonal set to 0) is tiled ``out/n x in/n`` times to the layer's shape, and the ``nnz``
largest entries of the tiled matrix become links (ties broken at random). The tiled matrix is never
built: an entry of C appears once per tile, so the k-th largest tiled entry is C's ⌊k / tiles⌋-th
largest, placed in tile ``k mod tiles`` (tiles cut at the layer's edge hold fewer copies of some entries).
Memory O(n² + nnz) — n is the input dimension (784 for MNIST).
"""
import torch

from ..sparse import keys_to_indices, link_count


def abs_correlation(features: torch.Tensor) -> torch.Tensor:
    """``features (n_samples, n)`` -> ``(n, n)`` float64 |Pearson correlation|, 0 for constant features
    and on the diagonal."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (n_samples >= 2, n_features), got {tuple(features.shape)}")
    x = features.double()
    x = x - x.mean(0)
    norm = x.norm(dim=0)
    alive = norm > 0
    x = x[:, alive] / norm[alive]
    corr = torch.zeros(features.shape[1], features.shape[1], dtype=torch.float64, device=features.device)
    block = (x.t() @ x).abs()
    corr[alive.nonzero().squeeze(1).unsqueeze(1), alive.nonzero().squeeze(1).unsqueeze(0)] = block
    corr.fill_diagonal_(0.0)
    return corr


def csti(features: torch.Tensor, out_features: int, density: float, in_features: int | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """CSTI links, ``(2, nnz)`` int64 sorted row-major, ``nnz = link_count(out, in, density)``.

    ``features: (n_samples, n)`` raw inputs (e.g. the training images, flattened); ``in_features``
    defaults to n. When a size is not a multiple of n (a 333,334-neuron layer), the tiling is cut at the
    layer's edge: C's entry (i, j) then has as many copies as the tiles whose rows reach i and whose
    columns reach j, and the largest entries take all their copies, in tile order, until nnz are placed.
    """
    n = features.shape[-1]
    in_features = n if in_features is None else in_features
    nnz = link_count(out_features, in_features, density)
    device = features.device
    local = torch.arange(n, device=device)
    row_copies = torch.div(out_features - 1 - local, n, rounding_mode="floor") + 1     # tiles reaching row i
    col_copies = torch.div(in_features - 1 - local, n, rounding_mode="floor") + 1      # ... and column j
    flat = abs_correlation(features).flatten()
    copies = (row_copies.clamp(min=0).unsqueeze(1) * col_copies.clamp(min=0).unsqueeze(0)).flatten()
    shuffle = torch.randperm(flat.numel(), generator=generator, device=device)
    ranked = shuffle[torch.sort(flat[shuffle], descending=True, stable=True).indices]
    ranked = ranked[copies[ranked] > 0]                     # entries outside a layer smaller than n
    ends = torch.cumsum(copies[ranked], 0)
    rank = torch.arange(nnz, device=device)
    which = torch.searchsorted(ends, rank, right=True)      # the entry of the rank-th link ...
    entry = ranked[which]
    copy = rank - (ends[which] - copies[entry])             # ... and which of its copies, in tile order
    tiles_in = col_copies[entry % n]
    rows = torch.div(copy, tiles_in, rounding_mode="floor") * n + torch.div(entry, n, rounding_mode="floor")
    cols = copy % tiles_in * n + entry % n
    return keys_to_indices((rows * in_features + cols).sort().values, in_features)
