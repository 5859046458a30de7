"""Linear keys and validation of link lists.

A link (row, col) of an ``out x in`` layer has the linear key ``row * in + col``. Sorting keys is
sorting links row-major; merging two sorted key vectors is how links are inserted without a dense
``out x in`` tensor.
"""
import torch


def linear_keys(indices: torch.Tensor, in_features: int) -> torch.Tensor:
    """``indices: (2, nnz)`` int64 -> ``(nnz,)`` int64 keys ``row * in_features + col``."""
    return indices[0] * in_features + indices[1]


def keys_to_indices(keys: torch.Tensor, in_features: int) -> torch.Tensor:
    """``keys: (nnz,)`` int64 -> ``indices: (2, nnz)`` int64 (row, col)."""
    return torch.stack((torch.div(keys, in_features, rounding_mode="floor"), keys % in_features))


def first_occurrence(values: torch.Tensor) -> torch.Tensor:
    """``(n,)`` bool mask of the first occurrence of each value in ``values (n,)``."""
    order = torch.sort(values, stable=True).indices
    sorted_values = values[order]
    first = torch.ones_like(sorted_values, dtype=torch.bool)
    first[1:] = sorted_values[1:] != sorted_values[:-1]
    mask = torch.zeros_like(first)
    mask[order] = first
    return mask


def check_shape(out_features, in_features) -> None:
    """Raise ``ValueError`` unless both sizes are positive Python ints."""
    for name, value in (("out_features", out_features), ("in_features", in_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_density(density) -> float:
    """Return ``density`` as float; raise ``ValueError`` unless it lies in (0, 1]."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0.0 < density <= 1.0:
        raise ValueError(f"density must be a number in (0, 1], got {density!r}")
    return float(density)


def link_count(out_features: int, in_features: int, density: float) -> int:
    """Number of links of a layer at ``density``: ``round(density * out * in)`` (Python's round, half to
    even), and at least 1. Every initializer produces exactly this many links."""
    check_shape(out_features, in_features)
    return max(1, round(check_density(density) * out_features * in_features))


def describe_links(entries: torch.Tensor, limit: int = 5) -> str:
    """``entries (2, k)`` as '(r, c), ...' for error messages, at most ``limit`` of them."""
    pairs = entries.t()[:limit].tolist()
    more = f" and {entries.shape[1] - limit} more" if entries.shape[1] > limit else ""
    return ", ".join(f"({r}, {c})" for r, c in pairs) + more


def check_indices(indices, shape: tuple[int, int], name: str = "indices", require_sorted: bool = True) -> None:
    """Validate a link list against the storage contract.

    ``indices`` must be a ``(2, nnz)`` int64 tensor with rows in ``[0, shape[0])`` and columns in
    ``[0, shape[1])``, unique, and (if ``require_sorted``) sorted row-major. Raises ``ValueError`` naming
    the argument and the offending entries.
    """
    if not isinstance(indices, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(indices).__name__}")
    if indices.dtype != torch.int64:
        raise ValueError(f"{name} must have dtype torch.int64, got {indices.dtype}")
    if indices.dim() != 2 or indices.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, nnz), got {tuple(indices.shape)}")
    rows, cols = indices
    out_of_bounds = (rows < 0) | (rows >= shape[0]) | (cols < 0) | (cols >= shape[1])
    if bool(out_of_bounds.any()):
        raise ValueError(f"{name} out of bounds for shape {tuple(shape)}: {describe_links(indices[:, out_of_bounds])}")
    keys = linear_keys(indices, shape[1])
    if require_sorted and keys.numel() > 1 and not bool((keys[1:] > keys[:-1]).all()):
        step = keys[1:] <= keys[:-1]
        duplicate = keys[1:] == keys[:-1]
        if bool(duplicate.any()):
            raise ValueError(f"{name} has duplicate links: {describe_links(indices[:, 1:][:, duplicate])}")
        raise ValueError(f"{name} is not sorted row-major at: {describe_links(indices[:, 1:][:, step])}")
    if not require_sorted:
        sorted_keys = keys.sort().values
        duplicate = sorted_keys[1:] == sorted_keys[:-1]
        if bool(duplicate.any()):
            entries = keys_to_indices(sorted_keys[1:][duplicate].unique(), shape[1])
            raise ValueError(f"{name} has duplicate links: {describe_links(entries)}")
