"""Uniform sampling of distinct links, in O(k) memory: no dense ``out x in`` mask is ever built.

Random draws happen on the generator's device (a CPU generator drives CUDA tensors too) and the
results are moved to the requested device.
"""
import torch


def draw_device(generator: torch.Generator | None, device) -> torch.device:
    """Where random numbers are drawn: the generator's device, else ``device`` (default CPU)."""
    return generator.device if generator is not None else torch.device(device or "cpu")


@torch.no_grad()
def uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` with U(-bound, bound) drawn from ``generator`` (any device); returns it."""
    draw = torch.rand(tensor.shape, generator=generator, device=draw_device(generator, tensor.device),
                      dtype=tensor.dtype)
    return tensor.copy_(draw * (2 * bound) - bound)


@torch.no_grad()
def normal_(tensor: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` with N(0, std²) drawn from ``generator`` (any device); returns it."""
    draw = torch.randn(tensor.shape, generator=generator, device=draw_device(generator, tensor.device),
                       dtype=tensor.dtype)
    return tensor.copy_(draw * std)


def sample_keys(total: int, k: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``k`` distinct keys drawn uniformly from ``[0, total)``, returned sorted ``(k,)`` int64.

    Draws with replacement and tops up the missing ones until ``k`` distinct keys remain; when
    ``k > total / 2`` it samples the complement instead, so the expected work stays O(k).
    """
    if not 0 <= k <= total:
        raise ValueError(f"cannot sample {k} distinct keys from {total}")
    target = torch.device(device or "cpu")
    device = draw_device(generator, device)
    if 2 * k > total:
        dropped = sample_keys(total, total - k, generator, device)
        return absent_keys_at(dropped, torch.arange(k, device=device)).to(target)
    keys = torch.empty(0, dtype=torch.int64, device=device)
    while keys.numel() < k:
        draw = torch.randint(total, (k - keys.numel() + 16,), generator=generator, device=device)
        keys = torch.cat((keys, draw)).unique()
    if keys.numel() > k:
        order = torch.randperm(keys.numel(), generator=generator, device=device)[:k]
        keys = keys[order].sort().values
    return keys.to(target)


def absent_keys_at(present: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """Keys of the absent positions with the given ranks.

    ``present``: sorted ``(nnz,)`` int64 keys in use. ``ranks``: ``(k,)`` int64 in ``[0, total - nnz)``.
    Returns ``(k,)`` int64: the ``ranks[i]``-th smallest key not in ``present``.
    """
    shifted = present - torch.arange(present.numel(), device=present.device)
    return ranks + torch.searchsorted(shifted, ranks, right=True)


def sample_absent_keys(present: torch.Tensor, total: int, k: int, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """``k`` distinct keys drawn uniformly from ``[0, total)`` minus ``present`` (sorted, unique); sorted ``(k,)``."""
    if present.numel() > 1 and not bool((present[1:] > present[:-1]).all()):
        raise ValueError("present must be sorted ascending and unique")
    ranks = sample_keys(total - present.numel(), k, generator, present.device)
    return absent_keys_at(present, ranks)
