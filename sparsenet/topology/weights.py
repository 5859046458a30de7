"""Initial values for the links of a sparse layer: ``WEIGHT_INITS[name](layer, generator)``; the same
rules at density 1 for a dense ``nn.Linear`` (``init_dense_values``)."""
import math
from dataclasses import dataclass

import torch

from ..sparse import normal_, uniform_


def swi(layer, generator=None) -> None:
    """N(0, 2 / (density · in_features)): Kaiming with the effective fan-in (CHT's SWI). The authors'
    newest code uses out_features here by mistake (an (out, in) layout slip in its
    DSTScheduler); in_features is the fan-in."""
    normal_(layer.values, math.sqrt(2.0 / (layer.density * layer.in_features)), generator)


def kaiming(layer, generator=None) -> None:
    """N(0, 2 / in_features): dense Kaiming, what the SET/RigL baselines use."""
    normal_(layer.values, math.sqrt(2.0 / layer.in_features), generator)


def xavier(layer, generator=None) -> None:
    """U(±sqrt(6 / (in_features + out_features))): Glorot, the Transformer default."""
    uniform_(layer.values, math.sqrt(6.0 / (layer.in_features + layer.out_features)), generator)


def zeros(layer, generator=None) -> None:
    layer.values.zero_()


WEIGHT_INITS = {"swi": swi, "kaiming": kaiming, "xavier": xavier, "zeros": zeros}


@torch.no_grad()
def init_values(layer, method: str = "swi", generator: torch.Generator | None = None) -> None:
    """Fill ``layer.values`` of a ``SparseLinear`` in place with the named rule."""
    if method not in WEIGHT_INITS:
        raise ValueError(f"unknown weight init {method!r}; choose from {sorted(WEIGHT_INITS)}")
    WEIGHT_INITS[method](layer, generator)


@dataclass
class _DenseLinks:
    """A dense ``nn.Linear`` weight ``(out, in)`` seen as links at density 1, for the rules above."""
    values: torch.Tensor
    in_features: int
    out_features: int
    density: float = 1.0


def init_dense_values(linear: torch.nn.Linear, method: str, generator: torch.Generator | None = None) -> None:
    """Fill a dense ``linear.weight`` in place with the named rule at density 1 (``swi`` is then ``kaiming``):
    the dense baseline started at the same value scale as a sparse model's links."""
    init_values(_DenseLinks(linear.weight, linear.in_features, linear.out_features), method, generator)
