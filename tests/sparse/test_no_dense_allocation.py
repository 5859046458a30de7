"""The one law, checked exactly: no op on any public path returns a strided tensor of out*in elements.

A dispatch mode sees every aten op's outputs, so a dense tensor is caught even if it is never
touched (which an RSS measurement would miss).
"""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from sparsenet.sparse import SparseLinear, layer_memory, linear_keys, sample_absent_keys

OUT, IN = 300, 400


class DenseAllocationGuard(TorchDispatchMode):
    """Records every strided op output with at least ``limit`` elements, except ``(2, n)`` link lists
    (at density above 0.5 a layer's own index list has more than out*in elements)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.hits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(result)[0]:
            if (isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided
                    and tensor.numel() >= self.limit and not (tensor.dim() == 2 and tensor.shape[0] == 2)):
                self.hits.append((str(func), tuple(tensor.shape)))
        return result


def _guarded(fn):
    with DenseAllocationGuard(OUT * IN) as guard:
        fn()
    return guard.hits


@pytest.fixture
def layer():
    return SparseLinear(IN, OUT, density=0.01, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_guard_catches_a_dense_weight(layer):
    assert _guarded(layer.to_dense)


@pytest.mark.parametrize("autocast", [None, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("blocked", [False, True])
def test_no_dense_tensor_in_construction_training_and_edits(layer, blocked, autocast, monkeypatch):
    if blocked:  # the batch-blocked kernel, forward and backward, in blocks of 2 of the 8 rows
        from sparsenet.sparse import functional
        monkeypatch.setattr(functional, "BLOCK_ROWS", 2)
        monkeypatch.setattr(functional, "BLOCKED_OPERAND_BYTES", 0)
    if autocast is not None:  # float32 master weights, products under the kernel's autocast policy
        layer.float()
    x = torch.randn(8, IN, dtype=layer.values.dtype, requires_grad=True)
    g = torch.Generator().manual_seed(1)

    def session():
        SparseLinear(IN, OUT, density=0.6, generator=g)
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            y = layer(x)
        y.float().square().sum().backward()
        layer.remove(torch.rand(layer.nnz, generator=g) < 0.7)
        keys = sample_absent_keys(linear_keys(layer.indices, IN), OUT * IN, 200, g)
        layer.insert(torch.stack((keys // IN, keys % IN)))
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            y = layer(x)
        y.float().sum().backward()
        layer.load_state_dict(SparseLinear(IN, OUT, density=0.02, dtype=torch.float64).state_dict())
        layer_memory(layer)
    assert _guarded(session) == []
