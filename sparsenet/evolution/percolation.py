"""Percolation of dead neurons over keep masks (the CHTss paper, arXiv 2501.19107, Appendix F and Fig. 1c),
declared by the model as relations.

Chain(layers): layer ℓ's outputs are layer ℓ+1's inputs (MLP hidden stack; V→O; W1→W2). One backward
sweep removes the links into neurons that lost every link out, then one forward sweep removes the links
out of neurons that lost every link in (a single pass each way, as the authors' code).
SamePosition(q, k): output neuron h is only useful if alive in both (attention's q·k): rows of q whose
k-row is empty are cleared, then rows of k whose (updated) q-row is empty.
"""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Chain:
    layers: tuple

    def __post_init__(self):
        for a, b in zip(self.layers, self.layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"chain layers do not connect: {a.shape} then {b.shape}")


@dataclass(frozen=True)
class SamePosition:
    first: object
    second: object

    def __post_init__(self):
        if self.first.out_features != self.second.out_features:
            raise ValueError(f"same-position layers need equal outputs: {self.first.shape} vs {self.second.shape}")


def _row_alive(layer, keep: torch.Tensor) -> torch.Tensor:
    return torch.bincount(layer.indices[0][keep], minlength=layer.out_features) > 0


def _col_alive(layer, keep: torch.Tensor) -> torch.Tensor:
    return torch.bincount(layer.indices[1][keep], minlength=layer.in_features) > 0


def percolate(keep: dict, relations) -> dict:
    """Return updated ``keep`` masks (``{layer: (nnz,) bool}``) after percolating every relation in order."""
    keep = dict(keep)
    for relation in relations:
        if isinstance(relation, Chain):
            layers = relation.layers
            for i in range(len(layers) - 2, -1, -1):
                used = _col_alive(layers[i + 1], keep[layers[i + 1]])
                keep[layers[i]] = keep[layers[i]] & used[layers[i].indices[0]]
            for i in range(1, len(layers)):
                fed = _row_alive(layers[i - 1], keep[layers[i - 1]])
                keep[layers[i]] = keep[layers[i]] & fed[layers[i].indices[1]]
        elif isinstance(relation, SamePosition):
            first, second = relation.first, relation.second
            keep[first] = keep[first] & _row_alive(second, keep[second])[first.indices[0]]
            keep[second] = keep[second] & _row_alive(first, keep[first])[second.indices[0]]
        else:
            raise TypeError(f"unknown percolation relation {relation!r}")
    return keep
