"""Regrowth candidates: score blocks ``(keys, scores)`` over absent links of one layer.

Random regrowth has no blocks (every absent link scores 0 and ``select_absent`` draws uniformly).
"""
from typing import Iterator

import torch

from .linkpred import DEFAULT_BUDGET, MIN_BLOCKS, ch_score_blocks

CH_VARIANTS = {"ch3_l3p": "CH3-L3p", "ch3_l3n": "CH3-L3n", "ch2_l3n": "CH2-L3n"}


def _dense_block_items(start: int, scores: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    local, cols = scores.nonzero(as_tuple=True)
    return (local + start) * n + cols, scores[local, cols]


def link_prediction_blocks(layer, variant: str, memory_budget: int = DEFAULT_BUDGET
                           ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """CH scores of the layer's absent links, block by block (``variant`` a key of ``CH_VARIANTS``)."""
    n = layer.in_features
    for block in ch_score_blocks(layer.indices, layer.shape, CH_VARIANTS[variant], memory_budget=memory_budget):
        if block.dense is not None:
            yield _dense_block_items(block.start, block.dense, n)
        else:
            local, cols, values = block.sparse
            yield (local + block.start) * n + cols, values


def gradient_blocks(layer, inputs: torch.Tensor, grad_outputs: torch.Tensor, memory_budget: int = DEFAULT_BUDGET
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """RigL's |∂L/∂W| on absent links, ``|dYᵀ X|`` in row blocks: ``inputs (N, in)``, ``grad_outputs (N, out)``."""
    out_features, n = layer.shape
    rows_per_block = max(1, min(memory_budget // (8 * n), -(-out_features // MIN_BLOCKS)))
    x = inputs.reshape(-1, n).to(layer.values.dtype)
    dy = grad_outputs.reshape(-1, out_features).to(layer.values.dtype)
    ptr, (rows, cols) = layer.crow.long(), layer.indices  # the link list built once, not per block
    for start in range(0, out_features, rows_per_block):
        stop = min(start + rows_per_block, out_features)
        scores = (dy[:, start:stop].t() @ x).abs()
        links = slice(int(ptr[start]), int(ptr[stop]))
        scores[rows[links] - start, cols[links]] = 0.0
        yield _dense_block_items(start, scores, n)


REGROWTH_KINDS = ("random", "gradient", *CH_VARIANTS)
