"""Sparse storage and kernels: knows nothing of training."""
import warnings

from .csr import CSRCache
from .edit import insert_links, remove_links
from .functional import shared_inputs, sparse_linear
from .keys import (check_density, check_indices, check_shape, first_occurrence, keys_to_indices, linear_keys,
                   link_count)
from .linear import SparseLinear
from .memory import LayerMemory, format_memory_table, layer_memory, total_memory
from .sample import absent_keys_at, draw_device, normal_, sample_absent_keys, sample_keys, uniform_

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

__all__ = ["CSRCache", "LayerMemory", "SparseLinear", "absent_keys_at", "check_density", "check_indices",
           "check_shape", "draw_device", "first_occurrence", "format_memory_table", "insert_links", "keys_to_indices", "layer_memory", "linear_keys",
           "link_count",
           "remove_links", "sample_absent_keys", "sample_keys", "shared_inputs", "sparse_linear", "total_memory",
           "normal_", "uniform_"]
