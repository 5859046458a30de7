"""sparsenet: truly sparse dynamic sparse training (CHTs and friends) for PyTorch."""
from .models import DST, densify, sparsify, start_sparsity
from .runtime import tune_cpu
from .sparse import SparseLinear

__version__ = "0.1.0"
__all__ = ["DST", "SparseLinear", "__version__", "densify", "sparsify", "start_sparsity", "tune_cpu"]
