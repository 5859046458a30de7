"""A topology update of the paper MLP (784-1568³-10 at 99% sparsity: 4,704 output rows) makes at most 300 host
syncs for every method: O(layers), never one per row (each costs a GPU pipeline drain)."""
import pytest
import torch
from torch.nn import functional as F

from sparsenet.evolution import DensitySchedule, TopologyEngine, make_method, method_schedule
from sparsenet.models.mlp import MLP
from sparsenet.topology import init_sparse_model
from tests.syncs import SyncCounter

MOST = 300


def update_syncs(name: str, density: float = 0.01) -> SyncCounter:
    """The sync counter of the first topology update of a freshly initialised paper MLP after one SGD step."""
    torch.manual_seed(0)
    method = make_method(name)
    model = MLP(density=density, generator=torch.Generator().manual_seed(0))
    init_sparse_model(model, "er", DensitySchedule(density, method.density_schedule).start(), weights=method.weights,
                      generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    engine = TopologyEngine(model, optimizer, method, method_schedule(method, 1, 10), density=density)
    F.cross_entropy(model(torch.randn(64, 784)), torch.randint(10, (64,))).backward()
    optimizer.step()
    with SyncCounter() as syncs:
        stats = engine.step(1)
    assert stats["regrown"] > 0
    return syncs


@pytest.mark.parametrize("name", ["set", "rigl", "mest", "cht", "chts", "chtss"])
def test_an_update_of_the_paper_mlp_makes_o_layers_syncs(name):
    syncs = update_syncs(name)
    assert syncs.count <= MOST, syncs.by_op.most_common(8)


if __name__ == "__main__":
    for method_name in ["set", "rigl", "mest", "cht", "chts", "chtss"]:
        counted = update_syncs(method_name)
        print(method_name, counted.count, dict(counted.by_op.most_common(6)))
