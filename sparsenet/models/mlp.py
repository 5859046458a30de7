"""The paper's MLP: sparse hidden layers, dense output layer (the CHTss paper, arXiv 2501.19107, §4.1)."""
import torch
from torch import nn

from ..evolution.percolation import Chain
from ..sparse import SparseLinear

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """``in → hidden... → classes``: hidden layers ``SparseLinear`` at ``density`` (one for all, or one per
    hidden layer; ``nn.Linear`` when ``dense``), the output layer always dense. Input ``(batch, in)``; output logits ``(batch, classes)``.

    Declares its hidden stack as one percolation chain: the last hidden layer feeds the dense output
    layer, so its outputs are never percolated.
    """

    def __init__(self, in_features: int = 784, hidden: tuple = (1568, 1568, 1568), classes: int = 10,
                 density: float | list[float] = 0.01, dense: bool = False, activation: str = "relu",
                 generator: torch.Generator | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        sizes = (in_features, *hidden)
        densities = list(density) if isinstance(density, (list, tuple)) else [density] * len(hidden)
        if len(densities) != len(hidden):
            raise ValueError(f"density: {len(densities)} values for {len(hidden)} hidden layers")
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) if dense else SparseLinear(a, b, density=d, generator=generator)
            for a, b, d in zip(sizes, sizes[1:], densities))
        self.activation = ACTIVATIONS[activation]()
        self.output = nn.Linear(sizes[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.output(x)

    def percolation_relations(self) -> list:
        layers = tuple(layer for layer in self.hidden if isinstance(layer, SparseLinear))
        return [Chain(layers)] if len(layers) > 1 else []
