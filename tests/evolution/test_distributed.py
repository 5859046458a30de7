"""Under torch.distributed (gloo, two CPU processes), ranks end every update with rank 0's topology and
values, whether or not their own update changed the topology."""
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sparsenet.evolution import Schedule, TopologyEngine, make_method
from sparsenet.models import MLP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = MLP(in_features=12, hidden=(16, 16), classes=3, density=0.3, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    engine = TopologyEngine(model, optimizer, make_method("set"), Schedule(update_interval=1, total_steps=10),
                            seed=rank)  # different seeds: without the broadcast the ranks would diverge
    unchanged = TopologyEngine(model, optimizer, make_method("set"),
                               Schedule(update_interval=1, total_steps=10, zeta=0.0), seed=rank)
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(rank))
    for update in (unchanged, engine):  # ζ = 0 keeps every rank's (equal) topology; then SET changes it
        model(x).sum().backward()  # different data per rank: without the broadcast the values differ
        optimizer.step()
        optimizer.zero_grad()
        update.step(1)
        results[(rank, update is engine)] = [
            (layer.indices.clone(), layer.values.detach().clone(),
             optimizer.state[layer.values]["momentum_buffer"].clone()) for layer in model.hidden]
    dist.destroy_process_group()


def test_ranks_share_rank_zero_topology():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
    for changed in (False, True):
        for (indices0, values0, _), (indices1, values1, momentum1) in zip(results[(0, changed)],
                                                                          results[(1, changed)]):
            assert torch.equal(indices0, indices1) and torch.equal(values0, values1)
            assert momentum1.shape == (indices1.shape[1],)
    assert not torch.equal(results[(0, False)][0][0], results[(0, True)][0][0])  # SET did change the topology
