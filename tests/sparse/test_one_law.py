"""The one law: cost follows nnz. A 200k x 200k layer (a dense float weight would be 160 GB) trains."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from sparsenet.sparse import SparseLinear
    autocast = sys.argv[1] == "autocast"  # bf16 autocast: the kernel's policy, float32 master weights
    torch.manual_seed(0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    layer = SparseLinear(200_000, 200_000, density=1e-5, generator=torch.Generator().manual_seed(0))
    assert layer.nnz == 400_000
    x = torch.randn(4, 200_000, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().square().sum().backward()
    assert layer.values.grad.shape == (400_000,) and x.grad.shape == (4, 200_000)
    assert y.dtype == (torch.bfloat16 if autocast else torch.float32) and layer.values.grad.dtype == torch.float32
    keep = torch.rand(layer.nnz) < 0.7
    layer.remove(keep)
    new = torch.stack((torch.randint(200_000, (1000,)), torch.randint(200_000, (1000,))))
    keys = (new[0] * 200_000 + new[1]).unique()
    absent = keys[~torch.isin(keys, layer.indices[0] * 200_000 + layer.indices[1])]
    layer.insert(torch.stack((absent // 200_000, absent % 200_000)))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().sum().backward()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


@pytest.mark.parametrize("precision", ["float32", "autocast"])
def test_huge_layer_memory_follows_links(precision):
    result = subprocess.run([sys.executable, "-c", SCRIPT, precision], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth = int(result.stdout.strip().splitlines()[-1])
    dense_bytes = 200_000 * 200_000 * 4
    assert growth < 1 * 2**30, f"peak memory grew by {growth / 2**20:.0f} MiB"
    assert growth < dense_bytes / 100
