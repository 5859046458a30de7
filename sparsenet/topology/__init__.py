"""Sparse topologies: initialisers returning link lists ``(2, nnz)`` in O(nnz), and their measures.

Random draws happen on the generator's device (CPU by default); move the result where it is used.
"""
from .brf import brf
from .bsf import bsf, equal_partition, resort
from .bsw import bsw, lattice
from .csti import abs_correlation, csti
from .er import er
from .measures import (ITOPTracker, active_neuron_rate, active_neurons, credit_assignment_paths, degrees,
                       mean_ring_distance, overlap, powerlaw_exponent)
from .plan import DISTRIBUTIONS, copy_topology, init_sparse_model, layer_densities, sparse_layers
from .registry import INITIALIZERS, make_topology
from .weights import WEIGHT_INITS, init_values

__all__ = ["DISTRIBUTIONS", "INITIALIZERS", "ITOPTracker", "WEIGHT_INITS", "abs_correlation", "active_neuron_rate",
           "active_neurons", "brf", "bsf", "bsw", "copy_topology", "credit_assignment_paths", "csti", "degrees", "equal_partition",
           "er", "init_sparse_model", "init_values", "lattice", "layer_densities", "make_topology",
           "mean_ring_distance", "overlap", "powerlaw_exponent", "resort", "sparse_layers"]
