"""Topology edits on a sorted link list, by merging linear keys: nothing of size ``out x in``.

Each edit returns position maps so that any per-link tensor (values, optimizer moments, scores) can
be carried over to the new order with one gather or scatter.
"""
import torch

from .keys import check_indices, describe_links, keys_to_indices, linear_keys


def remove_links(indices: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the links where ``keep`` is False.

    ``indices: (2, nnz)`` int64 sorted; ``keep: (nnz,)`` bool. Returns ``(new_indices (2, nnz'),
    old_to_new (nnz,) int64)`` where ``old_to_new[i]`` is the new position of old link i, or -1.
    """
    if keep.dtype != torch.bool or keep.shape != (indices.shape[1],):
        raise ValueError(f"keep must be a bool tensor of shape ({indices.shape[1]},), "
                         f"got {keep.dtype} {tuple(keep.shape)}")
    old_to_new = torch.cumsum(keep, 0) - 1
    old_to_new[~keep] = -1
    return indices[:, keep], old_to_new


def insert_links(indices: torch.Tensor, new_indices: torch.Tensor, shape: tuple[int, int]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge new links into a sorted link list.

    ``indices: (2, nnz)`` sorted, unique; ``new_indices: (2, k)`` in any order, unique, absent from
    ``indices`` and in bounds (else ``ValueError`` naming the offending entries). Returns
    ``(merged (2, nnz + k), old_to_new (nnz,), added_to_new (k,))``: the positions in ``merged`` of the
    old links and of the new ones (in the order given).
    """
    check_indices(new_indices, shape, name="new_indices", require_sorted=False)
    in_features = shape[1]
    old_keys = linear_keys(indices, in_features)
    new_keys = linear_keys(new_indices, in_features)
    sorted_new, order = new_keys.sort()
    hit = torch.searchsorted(old_keys, sorted_new)
    if old_keys.numel():
        present = old_keys[hit.clamp(max=old_keys.numel() - 1)] == sorted_new
    else:
        present = torch.zeros_like(sorted_new, dtype=torch.bool)
    if bool(present.any()):
        existing = keys_to_indices(sorted_new[present], in_features)
        raise ValueError(f"new_indices already present in the layer: {describe_links(existing)}")
    device = indices.device
    old_to_new = torch.arange(old_keys.numel(), device=device) + torch.searchsorted(sorted_new, old_keys)
    sorted_pos = torch.arange(sorted_new.numel(), device=device) + hit
    added_to_new = torch.empty_like(sorted_pos)
    added_to_new[order] = sorted_pos
    merged_keys = torch.empty(old_keys.numel() + new_keys.numel(), dtype=torch.int64, device=device)
    merged_keys[old_to_new] = old_keys
    merged_keys[sorted_pos] = sorted_new
    return keys_to_indices(merged_keys, in_features), old_to_new, added_to_new
