"""Models built of ``SparseLinear`` layers."""
from .mlp import MLP

__all__ = ["MLP"]
