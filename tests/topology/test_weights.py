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
