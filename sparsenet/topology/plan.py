"""Apply sparse initialisers to every ``SparseLinear`` of a model (layer densities, topology, values)."""
import torch
from torch import nn

from ..sparse import SparseLinear, check_density
from .bsf import equal_partition as rewire_equal_partition, resort as resort_chain
from .registry import make_topology
from .weights import init_values

DISTRIBUTIONS = ("uniform", "erk")


def sparse_layers(model: nn.Module) -> list[SparseLinear]:
    """The model's ``SparseLinear`` modules in registration order."""
    return [m for m in model.modules() if isinstance(m, SparseLinear)]


def layer_densities(shapes: list[tuple[int, int]], density: float, distribution: str = "uniform") -> list[float]:
    """Per-layer densities with the same total number of links as ``density`` everywhere.

    uniform: every layer at ``density`` (the paper's choice). erk: Erdős–Rényi-Kernel (RigL), density
    ∝ (out + in) / (out · in), layers that would exceed 1 capped at 1 and the rest rescaled.
    """
    check_density(density)
    if distribution == "uniform":
        return [density] * len(shapes)
    if distribution != "erk":
        raise ValueError(f"unknown density distribution {distribution!r}; choose from {DISTRIBUTIONS}")
    sizes = [out * inp for out, inp in shapes]
    budget = density * sum(sizes)
    dense = set()
    while True:
        free = [i for i in range(len(shapes)) if i not in dense]
        raw = {i: (shapes[i][0] + shapes[i][1]) / sizes[i] for i in free}
        scale = (budget - sum(sizes[i] for i in dense)) / sum(raw[i] * sizes[i] for i in free)
        over = [i for i in free if raw[i] * scale > 1.0]
        if not over:
            return [1.0 if i in dense else raw[i] * scale for i in range(len(shapes))]
        dense.update(over)


@torch.no_grad()
def init_sparse_model(model: nn.Module, init: str | list[str] = "er", density: float | list[float] = 0.01, weights: str = "swi",
                      distribution: str = "uniform", generator: torch.Generator | None = None,
                      equal_partition: bool = False, resort: bool = False, **options) -> None:
    """Give every ``SparseLinear`` of ``model`` a fresh topology and values, in place.

    ``init``: a name of ``INITIALIZERS``, or one per sparse layer (options such as ``beta``, ``r``,
    ``degree_dist``, ``features`` are passed on; each initialiser takes its own); ``density``: one for all layers (spread by ``distribution``) or one per sparse layer;
    ``weights``: a name of ``WEIGHT_INITS``; ``equal_partition``: rewire the first
    layer's input side to equal degrees; ``resort``: align hidden-neuron degrees between consecutive
    layers that chain (out of one = in of the next). Which layers stay dense is the model's choice: only
    ``SparseLinear`` modules are touched. Optimizer state must be created after this call.
    """
    layers = sparse_layers(model)
    if isinstance(density, (list, tuple)):
        if len(density) != len(layers):
            raise ValueError(f"density: {len(density)} values for {len(layers)} sparse layers")
        densities = [check_density(d) for d in density]
    else:
        densities = layer_densities([layer.shape for layer in layers], density, distribution)
    inits = list(init) if isinstance(init, (list, tuple)) else [init] * len(layers)
    if len(inits) != len(layers):
        raise ValueError(f"init: {len(inits)} initialisers for {len(layers)} sparse layers")
    topologies = [make_topology(name, layer.out_features, layer.in_features, d, generator, **options)
                  for name, layer, d in zip(inits, layers, densities)]
    if equal_partition and layers:
        topologies[0] = rewire_equal_partition(topologies[0], layers[0].shape, generator)
    if resort:
        start = 0
        for end in range(1, len(layers) + 1):
            if end == len(layers) or layers[end].in_features != layers[end - 1].out_features:
                topologies[start:end] = resort_chain(topologies[start:end], [l.shape for l in layers[start:end]],
                                                     generator)
                start = end
    for layer, indices in zip(layers, topologies):
        layer.set_topology(indices.to(layer.indices.device))
        init_values(layer, weights, generator)


@torch.no_grad()
def copy_topology(model: nn.Module, topologies: dict[str, torch.Tensor], weights: str = "swi",
                  generator: torch.Generator | None = None) -> None:
    """Give every ``SparseLinear`` of ``model`` the links of ``topologies[name]`` (``(2, nnz)`` int64,
    row-major sorted; e.g. another run's final topology) and fresh ``weights`` values, in place.

    ``ValueError`` unless the model's sparse layers and ``topologies`` name the same layers; a topology out
    of a layer's bounds is refused by ``SparseLinear.set_topology``.
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, SparseLinear)}
    if set(layers) != set(topologies):
        missing, extra = sorted(set(layers) - set(topologies)), sorted(set(topologies) - set(layers))
        raise ValueError(f"the topology does not fit this model: layers without a topology {missing[:3]}, "
                         f"topologies without a layer {extra[:3]}")
    for name, layer in layers.items():
        layer.set_topology(topologies[name].to(layer.indices.device))
        init_values(layer, weights, generator)
