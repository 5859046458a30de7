"""Ring geometry shared by the lattice-based topologies (BSW, BRF).

The two sides of a layer are laid on rings; node ``j`` of the larger side (size ``n_large``) sits at
position ``j * n_small / n_large`` of the smaller side's ring (size ``n_small``).
"""
import torch


def spread(total: int, n: int, device=None) -> torch.Tensor:
    """Split ``total`` into ``n`` integer parts differing by at most one, extras evenly spaced.

    Returns ``(n,)`` int64 with sum ``total`` (Bresenham: part j = floor((j+1)T/n) - floor(jT/n)).
    """
    edges = torch.div(torch.arange(n + 1, device=device) * total, n, rounding_mode="floor")
    return edges[1:] - edges[:-1]


def segment_offsets(counts: torch.Tensor) -> torch.Tensor:
    """For ``counts (n,)``: ``(sum,)`` int64 offsets 0..counts[i]-1 of each element within its segment."""
    starts = torch.cumsum(counts, 0) - counts
    total = int(counts.sum())
    return torch.arange(total, device=counts.device) - torch.repeat_interleave(starts, counts, output_size=total)


def centred_windows(counts: torch.Tensor, centres: torch.Tensor, ring: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each node i takes ``counts[i]`` consecutive ring positions centred at ``centres[i]`` (float).

    Returns ``(owner (nnz,), position (nnz,))`` int64: the node and the ring position of every link.
    """
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    start = torch.floor(centres - (counts - 1) / 2.0 + 0.5).long()
    position = (start.repeat_interleave(counts, output_size=total) + segment_offsets(counts)) % ring
    return owner, position


def ring_distance(a: torch.Tensor, b: torch.Tensor, ring: int) -> torch.Tensor:
    """Shortest distance on a ring of size ``ring`` between positions ``a`` and ``b`` (float)."""
    d = torch.remainder(a - b, ring)
    return torch.minimum(d, ring - d)


def orient(large: torch.Tensor, small: torch.Tensor, out_features: int, in_features: int) -> torch.Tensor:
    """Map (larger-side node, smaller-side node) pairs to ``(2, nnz)`` (row, col), sorted row-major."""
    rows, cols = (large, small) if out_features >= in_features else (small, large)
    keys = (rows * in_features + cols).sort().values
    return torch.stack((torch.div(keys, in_features, rounding_mode="floor"), keys % in_features))
