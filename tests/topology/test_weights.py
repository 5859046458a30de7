"""Initial values against their formulas."""
import math

import pytest
import torch

from sparsenet.sparse import SparseLinear
from sparsenet.topology import init_values


def test_swi_std_uses_effective_fan_in():
    layer = SparseLinear(1568, 784, density=0.05, generator=torch.Generator().manual_seed(0))
    init_values(layer, "swi", torch.Generator().manual_seed(1))
    expected = math.sqrt(2.0 / (layer.density * 1568))
    assert abs(float(layer.values.detach().std()) / expected - 1) < 0.05
    assert abs(float(layer.values.detach().mean())) < 0.05 * expected


def test_kaiming_xavier_zeros():
    layer = SparseLinear(400, 300, density=0.2)
    init_values(layer, "kaiming", torch.Generator().manual_seed(0))
    assert abs(float(layer.values.detach().std()) / math.sqrt(2 / 400) - 1) < 0.05
    init_values(layer, "xavier", torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 700)
    assert float(layer.values.detach().abs().max()) <= bound and float(layer.values.detach().abs().max()) > 0.95 * bound
    init_values(layer, "zeros")
    assert bool((layer.values == 0).all())
    with pytest.raises(ValueError, match="unknown weight init 'he'"):
        init_values(layer, "he")


@pytest.mark.parametrize("method", ["swi", "kaiming", "xavier"])
def test_each_rule_draws_from_its_generator(method):
    layer = SparseLinear(40, 30, density=0.2, generator=torch.Generator().manual_seed(0))
    drawn = []
    for seed in (1, 1, 2):
        torch.rand(3)  # moves the global generator between the draws
        init_values(layer, method, torch.Generator().manual_seed(seed))
        drawn.append(layer.values.detach().clone())
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], drawn[2])
