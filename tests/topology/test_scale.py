"""Initialisers cost O(nnz): no out*in tensor at any step, and a 100k x 100k layer in little memory."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from sparsenet.topology import bsf, equal_partition, make_topology, resort
from tests.sparse.test_no_dense_allocation import DenseAllocationGuard

OUT, IN = 800, 400


@pytest.mark.parametrize("name,options", [("er", {}), ("bsw", {"beta": 0.3}), ("bsf", {}), ("brf", {"r": 0.25}),
                                          ("brf", {"r": 0.9, "degree_dist": "uniform"}),
                                          ("csti", {"features": torch.randn(100, IN)})])
def test_no_dense_tensor_while_initialising(name, options):
    g = torch.Generator().manual_seed(0)
    with DenseAllocationGuard(OUT * IN) as guard:
        indices = make_topology(name, OUT, IN, 0.05, g, **options)
        equal_partition(indices, (OUT, IN), g)
    assert guard.hits == []


def test_no_dense_tensor_while_resorting():
    g = torch.Generator().manual_seed(0)
    layers = [bsf(IN, IN, 0.05, g), bsf(IN, IN, 0.05, g)]
    with DenseAllocationGuard(IN * IN) as guard:
        resort(layers, [(IN, IN), (IN, IN)], g)
    assert guard.hits == []


SCRIPT = textwrap.dedent("""
    import json, resource, torch
    from sparsenet.topology import make_topology
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sizes = [make_topology(name, 100_000, 100_000, 1e-4, torch.Generator().manual_seed(0)).shape[1]
             for name in ("er", "bsw")]
    print(json.dumps({"sizes": sizes, "growth": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024}))
""")


def test_large_layer_memory_is_bounded_by_links():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sizes"] == [1_000_000, 1_000_000]
    assert report["growth"] < 300 * 2**20  # 1M links; a dense 100k x 100k bool mask alone is 10 GB
