"""Regrowth rules: a registry of scorers over a layer's absent links, streamed in row blocks.

A rule's ``blocks(layer, memory_budget=..., **needs)`` yields ``(keys (N,) int64, scores (N,))`` for absent links
(linear keys ``row * in_features + col``), block by block; only positive scores are candidates, and when fewer
than k links score positive the rest are drawn uniformly (``selection.select_absent``). ``blocks=None`` is
uniform random regrowth. A rule also says what it needs: ``needs_activations`` — the layer's inputs and output
gradients of the last backward (RigL's |∂L/∂W| = |dYᵀ X|), passed as ``inputs`` and ``grad_outputs``;
``preflight(out_degree, in_degree, memory_budget)`` — raises ``ValueError`` before training when the rule
cannot score a layer with these degrees (CH3-L3p's path factors); ``link_prediction`` — the CH variant, for
memory planning. Hard or soft (``name_soft``: sampled ∝ score) is the method's choice. Add a rule with
``register_regrowth``; ``row_blocks`` and ``absent_items`` make a dense row-block scorer a few lines.
"""
import functools
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .linkpred import DEFAULT_BUDGET, MIN_BLOCKS, ch_score_blocks, check_path_degrees
from .registry import Registry

Blocks = Iterator[tuple[torch.Tensor, torch.Tensor]]


def row_blocks(layer, memory_budget: int = DEFAULT_BUDGET, bytes_per_entry: int = 8) -> Iterator[tuple[int, int]]:
    """Output-row ranges ``(start, stop)`` covering the layer, each a ``(rows, in)`` block of ``bytes_per_entry``
    entries within ``memory_budget`` and at most a quarter of the rows (never an out × in tensor)."""
    out_features, n = layer.shape
    rows_per_block = max(1, min(memory_budget // (bytes_per_entry * n), -(-out_features // MIN_BLOCKS)))
    for start in range(0, out_features, rows_per_block):
        yield start, min(start + rows_per_block, out_features)


def absent_items(layer, start: int, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys, scores)`` of the non-zero entries of ``scores (rows, in)``, a dense block of output rows from
    ``start``, after zeroing the layer's existing links there (in place): a regrowth rule's block."""
    n, ptr = layer.in_features, layer.crow[start:start + scores.shape[0] + 1]
    lo, hi = int(ptr[0]), int(ptr[-1])
    rows = torch.repeat_interleave(torch.arange(scores.shape[0], device=scores.device), ptr.diff().long(),
                                   output_size=hi - lo)
    scores[rows, layer.col[lo:hi].long()] = 0.0
    local, columns = scores.nonzero(as_tuple=True)
    return (local + start) * n + columns, scores[local, columns]


def link_prediction_blocks(layer, variant: str, memory_budget: int = DEFAULT_BUDGET, **_) -> Blocks:
    """CH scores (``variant``: CH3-L3p, CH3-L3n or CH2-L3n) of the layer's absent links, block by block."""
    n = layer.in_features
    for block in ch_score_blocks(layer.indices, layer.shape, variant, memory_budget=memory_budget):
        if block.dense is not None:
            local, cols = block.dense.nonzero(as_tuple=True)
            yield (local + block.start) * n + cols, block.dense[local, cols]
        else:
            local, cols, values = block.sparse
            yield (local + block.start) * n + cols, values


def gradient_blocks(layer, inputs: torch.Tensor, grad_outputs: torch.Tensor, memory_budget: int = DEFAULT_BUDGET,
                    **_) -> Blocks:
    """RigL's |∂L/∂W| on absent links, ``|dYᵀ X|`` in row blocks: ``inputs (N, in)``, ``grad_outputs (N, out)``."""
    out_features, n = layer.shape
    x = inputs.reshape(-1, n).to(layer.values.dtype)
    dy = grad_outputs.reshape(-1, out_features).to(layer.values.dtype)
    for start, stop in row_blocks(layer, memory_budget):
        yield absent_items(layer, start, (dy[:, start:stop].t() @ x).abs())


@dataclass(frozen=True)
class RegrowthRule:
    """A registered regrowth rule (see the module docstring)."""
    name: str
    blocks: Callable[..., Blocks] | None
    needs_activations: bool = False
    preflight: Callable[[torch.Tensor, torch.Tensor, int], None] | None = None
    link_prediction: str | None = None

    @property
    def names(self) -> list[str]:
        """The names a method may use for it: the rule, and its ``_soft`` form when it scores."""
        return [self.name] if self.blocks is None else [self.name, self.name + "_soft"]


REGROWTHS = Registry("regrowth", "register_regrowth(name, blocks)")


def register_regrowth(name: str, blocks: Callable[..., Blocks] | None, *, needs_activations: bool = False,
                      preflight: Callable[[torch.Tensor, torch.Tensor, int], None] | None = None,
                      link_prediction: str | None = None, replace: bool = False) -> RegrowthRule:
    """Register the regrowth rule ``name`` (usable as ``regrowth=name`` or ``name + "_soft"`` by any method and
    the CLI's ``--regrowth``): ``blocks(layer, memory_budget=..., **_)`` yields ``(keys, scores)`` of absent links
    in row blocks (``row_blocks`` + ``absent_items``), ``None`` for uniform random regrowth.
    ``needs_activations``: ``blocks`` also gets ``inputs (N, in)`` and ``grad_outputs (N, out)`` of the last
    forward and backward. ``preflight(out_degree, in_degree, memory_budget)``: raises ``ValueError`` where the
    rule cannot score such a layer (checked before training), its message going on from "RULE regrowth on the
    IN->OUT layer" ("needs ..."). ``link_prediction``: the CH variant it computes,
    for memory planning. ``replace``: allow replacing a registered rule."""
    return REGROWTHS.add(name, RegrowthRule(name, blocks, needs_activations, preflight, link_prediction), replace)


register_regrowth("random", None)
register_regrowth("gradient", gradient_blocks, needs_activations=True)
register_regrowth("ch3_l3p", functools.partial(link_prediction_blocks, variant="CH3-L3p"),
                  preflight=check_path_degrees, link_prediction="CH3-L3p")
register_regrowth("ch3_l3n", functools.partial(link_prediction_blocks, variant="CH3-L3n"), link_prediction="CH3-L3n")
register_regrowth("ch2_l3n", functools.partial(link_prediction_blocks, variant="CH2-L3n"), link_prediction="CH2-L3n")
