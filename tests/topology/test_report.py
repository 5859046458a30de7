"""``describe`` (what ``cli.py inspect`` prints): the degree statistics of every neuron, isolated ones
included, computed from the links alone."""
import pytest
import torch

from sparsenet.topology import make_topology
from sparsenet.topology.report import describe
from tests.sparse.test_no_dense_allocation import DenseAllocationGuard


def _reference(degree: torch.Tensor) -> dict:
    d = degree.double()
    return {"min": int(degree.min()), "mean": round(float(d.mean()), 4), "max": int(degree.max()),
            "std": round(float(d.std()), 4), "zero": int((degree == 0).sum())}


@pytest.mark.parametrize("shape, nnz, seed", [((30, 20), 40, 0), ((50, 80), 400, 1), ((7, 9), 63, 2),
                                              ((40, 40), 1, 3)])
def test_degree_statistics_match_a_per_neuron_count(shape, nnz, seed):
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randperm(shape[0] * shape[1], generator=generator)[:nnz].sort().values
    indices = torch.stack((keys // shape[1], keys % shape[1]))
    report = describe(indices, shape)
    for side, degree in (("output_degree", torch.bincount(indices[0], minlength=shape[0])),
                         ("input_degree", torch.bincount(indices[1], minlength=shape[1]))):
        measured = {k: report[side][k] for k in ("min", "mean", "max", "std", "zero")}
        assert measured == pytest.approx(_reference(degree), abs=1e-4), side


def test_describe_allocates_nothing_per_neuron():
    # 100 links between 20,000 and 30,000 neurons: no tensor may have as many elements as one side has neurons
    shape = (20_000, 30_000)
    indices = make_topology("er", *shape, 100 / (shape[0] * shape[1]), torch.Generator().manual_seed(0))
    with DenseAllocationGuard(shape[0]) as guard:
        report = describe(indices, shape)
    assert guard.hits == []
    assert report["nnz"] == 100 and report["output_degree"]["zero"] >= shape[0] - 100
