"""sparsenet: truly sparse dynamic sparse training (CHTs and friends) for PyTorch.

``sparsify`` and ``DST`` are the API for your own model; ``sparsenet.evolution`` holds the methods and the
registries (``register_removal``, ``register_regrowth``, ``register_method``) for your own rules."""
from .dst import DST, start_sparsity
from .runtime import tune_cpu
from .sparse import SparseLinear
from .sparsify import densify, sparsify

__version__ = "0.1.0"
__all__ = ["DST", "SparseLinear", "__version__", "densify", "sparsify", "start_sparsity", "tune_cpu"]
