"""Removal rules: a registry of scores over a layer's active links, each ``(nnz,)`` float, higher = more worth
keeping.

A rule is a score function ``score(layer, **parameters) -> (nnz,)`` plus how it is selected: ``per_sign`` rules
keep the ζ share closest to zero out of the positive and of the negative weights separately (SET's and the
ICLR-2024 CHT's ``wm_signed``; see ``selection.keep_per_sign``; hard only), the others keep the best
``n - ⌊ζ n⌋`` by score, hard or — named with ``_soft`` — sampled ∝ score^T. ``parameters`` names the
``Method`` fields the score reads (MEST's ``mest_lambda``). Add a rule with ``register_removal``::

    register_removal("snip", lambda layer, **_: (layer.values.detach() * layer.values.grad).abs())
"""
from dataclasses import dataclass
from typing import Callable

import torch

from .registry import Registry

RI_EPSILON = 1e-5


def magnitude(layer, **_) -> torch.Tensor:
    """|w| (WM)."""
    return layer.values.detach().abs()


def relative_importance(layer, **_) -> torch.Tensor:
    """RI = |w|/Σ_row(|w|+ε) + |w|/Σ_col(|w|+ε): normalised by the links sharing its output neuron and
    by those sharing its input neuron (the CHTss paper, arXiv 2501.19107, §3.1), sums by scatter-add over the
    link list."""
    w = layer.values.detach().abs()
    rows, cols = layer.indices
    row_sum = torch.zeros(layer.out_features, dtype=w.dtype, device=w.device).index_add_(0, rows, w + RI_EPSILON)
    col_sum = torch.zeros(layer.in_features, dtype=w.dtype, device=w.device).index_add_(0, cols, w + RI_EPSILON)
    return w / row_sum[rows] + w / col_sum[cols]


def mest(layer, mest_lambda: float = 0.01, **_) -> torch.Tensor:
    """|w| + λ|g| (MEST; the authors' λ = 0.01), g the gradient of the last backward (zeros if none)."""
    grad = layer.values.grad
    w = layer.values.detach().abs()
    return w if grad is None else w + mest_lambda * grad.detach().abs()


@dataclass(frozen=True)
class RemovalRule:
    """A registered removal rule: ``score(layer, **parameters) -> (nnz,)`` (>= 0, higher = keep), ``per_sign``
    (selected per sign, hard only), ``parameters`` (names of ``Method`` fields passed to ``score``)."""
    name: str
    score: Callable[..., torch.Tensor]
    per_sign: bool = False
    parameters: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """The names a method may use for it: the rule, and its ``_soft`` form unless it is per sign."""
        return [self.name] if self.per_sign else [self.name, self.name + "_soft"]

    def scores(self, layer, method) -> torch.Tensor:
        """``(nnz,)`` scores of ``layer``'s links with ``method``'s values of the rule's parameters."""
        return self.score(layer, **{name: getattr(method, name) for name in self.parameters})


REMOVALS = Registry("removal", "register_removal(name, score)")


def register_removal(name: str, score: Callable[..., torch.Tensor], *, per_sign: bool = False,
                     parameters: tuple[str, ...] = (), replace: bool = False) -> RemovalRule:
    """Register the removal rule ``name`` (usable as ``removal=name`` or ``name + "_soft"`` by any method, the
    CLI's ``--removal`` and ``prune_score``): ``score(layer, **kw) -> (nnz,)`` float scores of the layer's links,
    higher = more worth keeping. ``per_sign``: keep the largest scores per sign of the weights (hard only).
    ``parameters``: names of ``Method`` fields passed to ``score`` as keywords. ``replace``: allow replacing a
    registered rule."""
    return REMOVALS.add(name, RemovalRule(name, score, per_sign, tuple(parameters)), replace)


register_removal("wm", magnitude)
register_removal("wm_signed", magnitude, per_sign=True)
register_removal("ri", relative_importance)
register_removal("mest", mest, parameters=("mest_lambda",))
