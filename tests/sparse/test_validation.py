"""Bad constructor input raises ValueError naming the argument."""
import pytest
import torch

from sparsenet.sparse import SparseLinear


@pytest.mark.parametrize("density", [0, -0.1, 1.5, float("nan"), "0.5", True])
def test_density_outside_range(density):
    with pytest.raises(ValueError, match="density must be a number in \\(0, 1\\]"):
        SparseLinear(4, 4, density=density)


@pytest.mark.parametrize("in_f,out_f,name", [(0, 3, "in_features"), (3, -1, "out_features"),
                                             (2.5, 3, "in_features"), (3, "4", "out_features")])
def test_bad_shapes(in_f, out_f, name):
    with pytest.raises(ValueError, match=name):
        SparseLinear(in_f, out_f, density=0.5)


@pytest.mark.parametrize("indices,match", [
    (torch.tensor([[0], [1]], dtype=torch.int32), "indices must have dtype torch.int64"),
    (torch.tensor([0, 1]), "indices must have shape \\(2, nnz\\)"),
    (torch.zeros(3, 2, dtype=torch.int64), "indices must have shape \\(2, nnz\\)"),
    (torch.tensor([[0, 0], [1, 1]]), "indices has duplicate links: \\(0, 1\\)"),
    (torch.tensor([[4], [0]]), "indices out of bounds"),
    ([[0], [1]], "indices must be a torch.Tensor"),
])
def test_bad_indices(indices, match):
    with pytest.raises(ValueError, match=match):
        SparseLinear(3, 4, indices=indices)


def test_exactly_one_of_indices_or_density():
    with pytest.raises(ValueError, match="exactly one of indices or density"):
        SparseLinear(3, 3)
    with pytest.raises(ValueError, match="exactly one of indices or density"):
        SparseLinear(3, 3, density=0.5, indices=torch.tensor([[0], [0]]))


def test_unsorted_indices_are_sorted():
    layer = SparseLinear(3, 3, indices=torch.tensor([[2, 0, 1], [0, 2, 1]]))
    assert layer.indices.tolist() == [[0, 1, 2], [2, 1, 0]]


def test_density_sets_exact_link_count():
    for out_f, in_f, density in [(10, 10, 0.37), (1568, 784, 0.01), (1, 50, 1.0), (7, 3, 1e-9)]:
        layer = SparseLinear(in_f, out_f, density=density)
        assert layer.nnz == max(1, round(density * out_f * in_f))
