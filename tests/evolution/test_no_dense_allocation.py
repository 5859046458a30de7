"""The one law for topology updates: no out*in tensor while scoring, selecting, editing, remapping."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenet.evolution import Chain, Schedule, TopologyEngine, make_method
from sparsenet.sparse import SparseLinear
from tests.sparse.test_no_dense_allocation import DenseAllocationGuard

OUT, IN = 300, 400


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.first = SparseLinear(IN, OUT, density=0.05, generator=g)
        self.second = SparseLinear(OUT, IN, density=0.05, generator=g)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))

    def percolation_relations(self):
        return [Chain((self.first, self.second))]


@pytest.mark.parametrize("method,overrides", [("set", {}), ("rigl", {}), ("mest", {}), ("chts", {}),
                                              ("chts", {"regrowth": "ch2_l3n_soft", "removal": "ri_soft"}),
                                              ("cht", {"regrowth": "ch3_l3n"}), ("chtss", {})])
def test_engine_update_allocates_nothing_of_layer_size(method, overrides):
    model = Pair()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    engine = TopologyEngine(model, optimizer, make_method(method, **overrides),
                            Schedule(update_interval=1, total_steps=10))
    x = torch.randn(16, IN)
    F.mse_loss(model(x), x).backward()
    optimizer.step()
    with DenseAllocationGuard(OUT * IN) as guard:
        stats = engine.step(1)
    assert stats["regrown"] > 0
    assert guard.hits == []
