"""The engine under torch.distributed (gloo, two CPU processes): ranks end every update with rank 0's
topology, values and per-link optimizer state, whatever their own data, seeds or gradients; rank-local
RigL gradients cannot split the topology; a rank whose links were changed behind the engine's back is caught
by the digest check on every rank."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sparsenet.evolution import Schedule, TopologyEngine, make_method
from sparsenet.models import MLP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(worker, *args) -> dict:
    results = mp.Manager().dict()
    mp.spawn(worker, args=(_free_port(), results, *args), nprocs=2, join=True)
    return dict(results)


def _model_and_optimizer():
    torch.manual_seed(0)
    model = MLP(in_features=12, hidden=(16, 16), classes=3, density=0.3, generator=torch.Generator().manual_seed(0))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _state(model, optimizer) -> list:
    return [(layer.indices.clone(), layer.values.detach().clone(),
             optimizer.state[layer.values]["momentum_buffer"].clone()) for layer in model.hidden]


def _adopt_worker(rank: int, port: int, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model, optimizer = _model_and_optimizer()
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
        results[(rank, update is engine)] = _state(model, optimizer)
    dist.destroy_process_group()


def test_ranks_share_rank_zero_topology():
    results = _spawn(_adopt_worker)
    for changed in (False, True):
        for (indices0, values0, _), (indices1, values1, momentum1) in zip(results[(0, changed)],
                                                                          results[(1, changed)]):
            assert torch.equal(indices0, indices1) and torch.equal(values0, values1)
            assert momentum1.shape == (indices1.shape[1],)
    assert not torch.equal(results[(0, False)][0][0], results[(0, True)][0][0])  # SET did change the topology


def _local_gradients_worker(rank: int, port: int, results, name: str):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model, optimizer = _model_and_optimizer()
    engine = TopologyEngine(model, optimizer, make_method(name), Schedule(update_interval=1, total_steps=20),
                            seed=rank)
    generator = torch.Generator().manual_seed(100 + rank)  # each rank its own data, gradients never summed
    hashes = []
    for step in range(1, 6):
        x, y = torch.randn(16, 12, generator=generator), torch.randint(3, (16,), generator=generator)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        stats = engine.step(step)  # RigL reads the captured rank-local activations and gradients
        optimizer.zero_grad()
        hashes.append(stats["topology_hash"])
    results[rank] = (hashes, _state(model, optimizer))
    dist.destroy_process_group()


@pytest.mark.parametrize("name", ["set", "rigl", "chts"])
def test_rank_local_gradients_cannot_split_the_topology(name):
    results = _spawn(_local_gradients_worker, name)
    (hashes0, state0), (hashes1, state1) = results[0], results[1]
    assert hashes0 == hashes1 and len(set(hashes0)) == 5  # five updates, each a new topology, the same on both
    for (indices0, values0, momentum0), (indices1, values1, momentum1) in zip(state0, state1):
        assert torch.equal(indices0, indices1) and torch.equal(values0, values1)
        assert momentum1.shape == momentum0.shape == (indices0.shape[1],)


def _corrupted_worker(rank: int, port: int, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model, optimizer = _model_and_optimizer()
    engine = TopologyEngine(model, optimizer, make_method("set"), Schedule(update_interval=1, total_steps=10))
    model(torch.randn(4, 12)).sum().backward()
    optimizer.step()
    if rank == 1:  # move one link of the second sparse layer, behind the engine's back
        layer = model.hidden[1]
        indices = layer.indices.clone()
        taken = set(map(tuple, indices.t().tolist()))
        free = next((r, c) for r in range(layer.out_features) for c in range(layer.in_features) if (r, c) not in taken)
        indices[:, -1] = torch.tensor(free)
        order = (indices[0] * layer.in_features + indices[1]).argsort()
        layer.set_topology(indices[:, order], layer.values.detach()[order])
    try:
        engine.step(1)
        results[rank] = None
    except RuntimeError as error:
        results[rank] = str(error)
    dist.destroy_process_group()


def test_a_rank_with_other_links_is_caught_on_every_rank():
    results = _spawn(_corrupted_worker)
    message = ("the ranks' topologies differ before the update at step 1: sparse layer 1 (16->16) on rank(s) 1 is "
               "not rank 0's")
    assert results == {0: message, 1: message}
