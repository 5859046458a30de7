"""sparsenet: truly sparse dynamic sparse training (CHTs and friends) for PyTorch."""
from .sparse import SparseLinear

__version__ = "0.1.0"
__all__ = ["SparseLinear", "__version__"]
