"""Fixed-seed MLP runs of every method: the topology hash after 3 updates is pinned, so a change of the engine's
structure (registries, position maps, sync-free bookkeeping) cannot change a method's topology."""
import hashlib

import pytest
import torch
from torch.nn import functional as F

from sparsenet.evolution import DensitySchedule, TopologyEngine, make_method, method_schedule
from sparsenet.models.mlp import MLP
from sparsenet.topology import init_sparse_model

# (topology hash after 3 updates, values and momentum digest on one thread), recorded on the code before the rules became registries and the update became sync-free
PINNED = {
    "set": ("9abdf17976806c41", "57d26794128c9ccf"),
    "rigl": ("8e38c52b16c5cddf", "c1c4798bfae621af"),
    "mest": ("c602eacd3caab9d9", "0ad97e7342b88545"),
    "cht": ("52cba89e4ddc333b", "4d4c7d1dc5c62f03"),
    "chts": ("61206f272d80bf98", "d646c0ddd3a3ea45"),
    "chtss": ("c39833bf7f109681", "786a44c00c3e96fa"),
}


def run_hashes(name: str, updates: int = 3, interval: int = 2) -> tuple[list[str], str]:
    """Topology hashes after each of ``updates`` updates of a 64-128³-10 MLP at 90% sparsity, seed 0, and 16 hex
    digits of a SHA-256 over the sparse layers' values and the optimizer's momentum after the last one."""
    torch.manual_seed(0)
    method = make_method(name)
    model = MLP(64, (128, 128, 128), 10, density=0.1, generator=torch.Generator().manual_seed(0))
    data = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 64, generator=data), torch.randint(10, (256,), generator=data)
    start = DensitySchedule(0.1, method.density_schedule).start()
    options = {"features": x} if method.init == "csti" else {}
    init_sparse_model(model, method.init, start, weights=method.weights, generator=torch.Generator().manual_seed(0),
                      **options)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = method_schedule(method, interval, interval * (updates + 2), 0.3)
    engine = TopologyEngine(model, optimizer, method, schedule, density=0.1, seed=0)
    hashes, step = [], 0
    while len(hashes) < updates:
        step += 1
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        stats = engine.step(step)
        if stats:
            hashes.append(stats["topology_hash"])
    digest = hashlib.sha256()
    for layer in model.hidden:
        for tensor in (layer.values.detach(), optimizer.state[layer.values]["momentum_buffer"]):
            digest.update(tensor.contiguous().numpy().tobytes())
    return hashes, digest.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_fixed_seed_run_keeps_its_topology(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the values' summation order depends on the thread count, the topology does not
    try:
        hashes, values = run_hashes(name)
    finally:
        torch.set_num_threads(threads)
    assert (hashes[-1], values) == PINNED[name]


if __name__ == "__main__":
    for method_name in sorted(PINNED):
        print(method_name, run_hashes(method_name))
