"""Under torch.distributed (gloo, two CPU processes), ranks end every update with rank 0's topology."""
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
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(rank))
    model(x).sum().backward()
    optimizer.step()
    engine.step(1)
    results[rank] = [layer.indices.clone() for layer in model.hidden] + [
        optimizer.state[layer.values]["momentum_buffer"].clone() for layer in model.hidden]
    dist.destroy_process_group()


def test_ranks_share_rank_zero_topology():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
    for a, b in zip(results[0][:2], results[1][:2]):
        assert torch.equal(a, b)
    for momentum, indices in zip(results[1][2:], results[1][:2]):
        assert momentum.shape == (indices.shape[1],)
