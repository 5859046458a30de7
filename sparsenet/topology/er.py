"""Erdős–Rényi bipartite topology: links uniformly at random without replacement."""
import torch

from ..sparse import draw_device, keys_to_indices, link_count, sample_keys


def er(out_features: int, in_features: int, density: float, generator: torch.Generator | None = None
       ) -> torch.Tensor:
    """``link_count(out, in, density)`` distinct uniformly random links.

    Returns ``indices (2, nnz)`` int64, sorted row-major. O(nnz) time and memory.
    """
    device = draw_device(generator, None)
    nnz = link_count(out_features, in_features, density)
    return keys_to_indices(sample_keys(out_features * in_features, nnz, generator, device), in_features)
