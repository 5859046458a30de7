"""``SparseLinear``: a linear layer whose weight is stored as links (values + indices), never dense."""
import math

import torch
from torch import nn

from .csr import CSRCache, compress, expand
from .edit import insert_links, remove_links
from .functional import sparse_linear
from .keys import check_indices, check_shape, keys_to_indices, linear_keys, link_count
from .sample import sample_keys, uniform_


class SparseLinear(nn.Module):
    """``y = x Wᵀ + b`` with W of shape ``(out_features, in_features)`` stored sparse.

    State (all saved in ``state_dict``):
      values: ``nn.Parameter (nnz,)``, the only tensor with autograd; any ``torch.optim`` optimizer
              works unchanged and its state is nnz-sized.
      crow:   buffer ``(out + 1,)`` row pointers and
      col:    buffer ``(nnz,)`` input neuron of each link: the links as CSR, sorted row-major (row = output
              neuron), unique, in bounds; int32 when sizes allow, else int64. 4 bytes per link.
      bias:   dense ``nn.Parameter (out_features,)`` or None.
    ``indices`` is the ``(2, nnz)`` int64 link list, built from ``crow``/``col`` on each access (for edits
    and measures, not the hot path). The transposed cache (``CSRCache``, 8 bytes per link) is derived
    lazily and dropped on every edit. ``load_state_dict`` also reads the older ``indices`` format.

    Give either ``indices`` (a link list; any order, it is sorted) or ``density`` (uniformly random
    links, ``nnz = link_count(out, in, density)``). Input: ``(..., in_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, indices: torch.Tensor | None = None,
                 density: float | None = None, generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        check_shape(out_features, in_features)
        self.in_features = in_features
        self.out_features = out_features
        if (indices is None) == (density is None):
            raise ValueError("give exactly one of indices or density")
        if indices is None:
            nnz = link_count(out_features, in_features, density)
            keys = sample_keys(out_features * in_features, nnz, generator, device)
            indices = keys_to_indices(keys, in_features)
        else:
            check_indices(indices, self.shape, require_sorted=False)
            indices = keys_to_indices(linear_keys(indices, in_features).sort().values, in_features)
        crow, col = compress(indices.to(device), self.shape)
        self.register_buffer("crow", crow)
        self.register_buffer("col", col)
        self.values = nn.Parameter(torch.empty(indices.shape[1], device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self._cache: CSRCache | None = None
        self.reset_parameters(generator)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @property
    def indices(self) -> torch.Tensor:
        """The links ``(2, nnz)`` int64 (row, col), sorted row-major: a new tensor on each access."""
        return expand(self.crow, self.col)

    @property
    def density(self) -> float:
        return self.nnz / (self.out_features * self.in_features)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``nn.Linear``'s rule with the mean effective fan-in ``nnz / out``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        bound = 1.0 / math.sqrt(max(1.0, self.nnz / self.out_features))
        uniform_(self.values, bound, generator)
        if self.bias is not None:
            uniform_(self.bias, bound, generator)

    @property
    def cache(self) -> CSRCache:
        """CSR caches of the current topology, built on first use after an edit."""
        if self._cache is None:
            self._cache = CSRCache.build(self.crow, self.col, self.shape)
        return self._cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_linear(x, self.values, self.cache, self.bias)

    @torch.no_grad()
    def set_topology(self, indices: torch.Tensor, values: torch.Tensor | None = None) -> None:
        """Replace all links: ``indices (2, nnz)`` int64 sorted row-major and unique, ``values (nnz,)``
        (default zeros). Keeps the ``values`` Parameter object; optimizer state must be reset by the caller."""
        check_indices(indices, self.shape)
        if values is None:
            values = self.values.new_zeros(indices.shape[1])
        if values.shape != (indices.shape[1],):
            raise ValueError(f"values must have shape ({indices.shape[1]},), got {tuple(values.shape)}")
        self._set_topology(indices.to(self.col.device), values.to(self.values))

    def _set_topology(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        self.crow, self.col = compress(indices, self.shape)
        with torch.no_grad():
            self.values.set_(values)  # bumps the version: a pending backward of the old topology raises
        self.values.grad = None
        self._cache = None

    def _apply(self, fn, recurse=True):
        self._cache = None  # device or dtype moves invalidate the CSR caches
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def remove(self, keep: torch.Tensor) -> torch.Tensor:
        """Keep only the links where ``keep: (nnz,) bool`` is True.

        Returns ``old_to_new: (nnz_old,)`` int64, each old link's new position or -1 if removed.
        The ``values`` Parameter object is kept (optimizers keep their reference); its grad is cleared.
        """
        indices, old_to_new = remove_links(self.indices, keep)
        self._set_topology(indices, self.values[keep])
        return old_to_new

    @torch.no_grad()
    def insert(self, new_indices: torch.Tensor, new_values: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add links ``new_indices: (2, k)`` int64 (absent, unique, any order) with ``new_values: (k,)``.

        ``new_values`` defaults to zeros. Returns ``(old_to_new (nnz_old,), added_to_new (k,))``: the
        positions of the old and of the added links in the new order.
        """
        if isinstance(new_indices, torch.Tensor):
            new_indices = new_indices.to(self.col.device)
        indices, old_to_new, added_to_new = insert_links(self.indices, new_indices, self.shape)
        if new_values is None:
            new_values = self.values.new_zeros(added_to_new.numel())
        if new_values.shape != added_to_new.shape:
            raise ValueError(f"new_values must have shape {tuple(added_to_new.shape)}, got {tuple(new_values.shape)}")
        values = self.values.new_empty(indices.shape[1])
        values[old_to_new] = self.values
        values[added_to_new] = new_values.to(values)
        self._set_topology(indices, values)
        return old_to_new, added_to_new

    def to_dense(self) -> torch.Tensor:
        """The weight as a dense ``(out, in)`` tensor (export and tests only)."""
        dense = self.values.new_zeros(self.shape)
        dense[self.indices[0], self.indices[1]] = self.values.detach()
        return dense

    @classmethod
    def from_dense(cls, weight: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None
                   ) -> "SparseLinear":
        """Build from a dense ``weight (out, in)``; links where ``mask`` (default ``weight != 0``) is True."""
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
        mask = weight != 0 if mask is None else mask.bool()
        if mask.shape != weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from weight shape {tuple(weight.shape)}")
        indices = mask.nonzero().t().contiguous()
        layer = cls(weight.shape[1], weight.shape[0], bias=bias is not None, indices=indices,
                    device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.values.copy_(weight[indices[0], indices[1]])
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held by the layer: ``values``, ``indices`` (the CSR ``crow`` and ``col``), ``caches`` (the
        transposed form, if built), ``bias``, ``total``."""
        size = {
            "values": self.values.numel() * self.values.element_size(),
            "indices": sum(t.numel() * t.element_size() for t in (self.crow, self.col)),
            "caches": self._cache.nbytes() if self._cache is not None else 0,
            "bias": self.bias.numel() * self.bias.element_size() if self.bias is not None else 0,
        }
        size["total"] = sum(size.values())
        return size

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}, "
                f"density={self.density:.4g}, bias={self.bias is not None}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Takes the links as ``crow``/``col`` or in the older ``indices (2, nnz)`` format, checked against the
        storage contract; the buffers and ``values`` take the saved link count."""
        values = state_dict.get(prefix + "values")
        indices = state_dict.pop(prefix + "indices", None)  # the format before CSR storage
        if indices is None and prefix + "crow" in state_dict and prefix + "col" in state_dict:
            crow, col = state_dict[prefix + "crow"], state_dict[prefix + "col"]
            if crow.shape != (self.out_features + 1,) or col.dim() != 1 or int(crow[-1]) != col.numel() \
                    or bool((crow.diff() < 0).any()) or int(crow[0]) != 0:
                raise ValueError(f"{prefix}crow and {prefix}col are not the CSR of a {self.shape} layer")
            indices = expand(crow, col)
        if indices is not None and values is not None:
            check_indices(indices, self.shape, name=prefix + "indices")
            if values.shape != (indices.shape[1],):
                raise ValueError(f"{prefix}values has shape {tuple(values.shape)}, expected ({indices.shape[1]},)")
            self._set_topology(indices.to(self.col.device), self.values.new_empty(indices.shape[1]))
            state_dict[prefix + "crow"], state_dict[prefix + "col"] = self.crow, self.col
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
