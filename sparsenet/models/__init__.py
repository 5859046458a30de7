"""Models built of ``SparseLinear`` layers."""
from .mlp import MLP
from .search import beam_search, greedy_decode
from .transformer import Transformer

__all__ = ["MLP", "Transformer", "beam_search", "greedy_decode"]
