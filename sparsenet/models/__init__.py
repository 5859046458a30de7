"""Models built of ``SparseLinear`` layers, and users' own models made sparse (``sparsify``, ``DST``)."""
from .dst import DST, start_sparsity
from .mlp import MLP
from .relations import find_relations
from .search import beam_search, greedy_decode
from .sparsify import SparsifyReport, densify, sparsify
from .transformer import Transformer

__all__ = ["DST", "MLP", "SparsifyReport", "Transformer", "beam_search", "densify", "find_relations",
           "greedy_decode", "sparsify", "start_sparsity"]
