"""Correlated sparse topological initialisation (CSTI, from CHT): link inputs that correlate.

The ``n x n`` matrix C of |Pearson correlation| between the ``n`` input features (constant features
and the diagonal set to 0) is tiled ``out/n x in/n`` times to the layer's shape, and the ``nnz``
largest entries of the tiled matrix become links (ties broken at random). The tiled matrix is never
built: an entry of C appears once per tile, so the k-th largest tiled entry is C's ⌊k / tiles⌋-th
largest, placed in tile ``k mod tiles``. Memory O(n² + nnz) — n is the input dimension (784 for MNIST).
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
    defaults to n; both ``out_features`` and ``in_features`` must be multiples of n.
    """
    n = features.shape[-1]
    in_features = n if in_features is None else in_features
    if out_features % n or in_features % n:
        raise ValueError(f"csti needs out_features and in_features that are multiples of the {n} input "
                         f"features, got ({out_features}, {in_features})")
    nnz = link_count(out_features, in_features, density)
    tiles_out, tiles_in = out_features // n, in_features // n
    tiles = tiles_out * tiles_in
    flat = abs_correlation(features).flatten()
    shuffle = torch.randperm(flat.numel(), generator=generator, device=flat.device)
    ranked = shuffle[torch.sort(flat[shuffle], descending=True, stable=True).indices]
    rank = torch.arange(nnz, device=flat.device)
    entry = ranked[torch.div(rank, tiles, rounding_mode="floor")]
    tile = rank % tiles
    rows = torch.div(tile, tiles_in, rounding_mode="floor") * n + torch.div(entry, n, rounding_mode="floor")
    cols = tile % tiles_in * n + entry % n
    return keys_to_indices((rows * in_features + cols).sort().values, in_features)
