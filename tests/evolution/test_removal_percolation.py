"""Removal scores against dense formulas; percolation on hand-built chains."""
import torch

from sparsenet.evolution import Chain, SamePosition, magnitude, mest, percolate, relative_importance
from sparsenet.sparse import SparseLinear


def test_relative_importance_matches_dense_formula():
    layer = SparseLinear(7, 5, density=0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = layer.to_dense().abs()
    mask = (layer.to_dense() != 0).double()
    eps = 1e-5
    row_sum = (w + eps * mask).sum(1, keepdim=True)
    col_sum = (w + eps * mask).sum(0, keepdim=True)
    dense_ri = w / row_sum + w / col_sum
    rows, cols = layer.indices
    torch.testing.assert_close(relative_importance(layer), dense_ri[rows, cols])
    torch.testing.assert_close(magnitude(layer), w[rows, cols])


def test_mest_adds_gradient_magnitude():
    layer = SparseLinear(3, 2, indices=torch.tensor([[0, 1], [1, 2]]))
    with torch.no_grad():
        layer.values.copy_(torch.tensor([-1.0, 2.0]))
    assert mest(layer).tolist() == [1.0, 2.0]
    layer.values.grad = torch.tensor([0.5, -3.0])
    assert mest(layer, mest_lambda=2.0).tolist() == [2.0, 8.0]


def _layer(links, shape):
    return SparseLinear(shape[1], shape[0], indices=torch.tensor(links).t().contiguous())


def test_chain_percolation_backward_then_forward():
    # layer 1: 3 inputs -> 3 hidden; layer 2: 3 hidden -> 2 outputs
    first = _layer([(0, 0), (1, 1), (2, 2), (2, 0)], (3, 3))
    second = _layer([(0, 0), (1, 1), (1, 2)], (2, 3))
    keep = {first: torch.ones(4, dtype=torch.bool), second: torch.tensor([True, False, True])}
    # hidden 1 lost its only out-link -> its in-link (1, 1) goes; hidden 0 and 2 still feed out.
    result = percolate(keep, [Chain((first, second))])
    assert result[first].tolist() == [True, False, True, True]
    keep = {first: torch.tensor([True, True, False, False]), second: torch.ones(3, dtype=torch.bool)}
    # hidden 2 lost every in-link -> its out-link (1, 2) goes
    result = percolate(keep, [Chain((first, second))])
    assert result[second].tolist() == [True, True, False]


def test_same_position_rule_for_queries_and_keys():
    q = _layer([(0, 0), (1, 1), (2, 2)], (3, 3))
    k = _layer([(0, 1), (2, 0)], (3, 3))      # k's row 1 is empty
    keep = {q: torch.ones(3, dtype=torch.bool), k: torch.tensor([True, False])}
    result = percolate(keep, [SamePosition(q, k)])
    assert result[q].tolist() == [True, False, False]   # rows 1 (k empty) and 2 (k row 2 removed) go
    assert result[k].tolist() == [True, False]
