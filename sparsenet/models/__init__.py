"""Models built of ``SparseLinear`` layers: the paper's MLP, the Transformer and its decoding.

The API for users' own models (``sparsify``, ``DST``, ``find_relations``) moved to ``sparsenet`` itself
(``sparsenet.sparsify``, ``sparsenet.dst``, ``sparsenet.relations``); its old names here warn once and work."""
from .mlp import MLP
from .search import beam_search, greedy_decode
from .transformer import Transformer

MOVED = {"DST": "sparsenet.dst", "start_sparsity": "sparsenet.dst", "SparsifyReport": "sparsenet.sparsify",
         "densify": "sparsenet.sparsify", "sparsify": "sparsenet.sparsify", "find_relations": "sparsenet.relations"}

__all__ = ["MLP", "Transformer", "beam_search", "greedy_decode"]


def __getattr__(name: str):
    if name not in MOVED:
        raise AttributeError(f"module 'sparsenet.models' has no attribute {name!r}")
    import importlib

    from ..deprecation import moved
    moved(f"sparsenet.models.{name}", f"{MOVED[name]}.{name}")
    return getattr(importlib.import_module(MOVED[name]), name)
