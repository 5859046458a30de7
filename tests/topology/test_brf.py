"""BRF: nearest neighbours at r=0, the (1+d)^(-(1-r)/r) law for single draws, uniform at r=1."""
import math

import torch

from sparsenet.topology import brf, bsw, degrees, mean_ring_distance


def test_r_zero_is_the_lattice_seen_from_the_smaller_side():
    shape = (784, 1568)
    indices = brf(*shape, 0.01, r=0.0, generator=torch.Generator().manual_seed(0))
    small_degree = degrees(indices, shape)[0]
    mean = indices.shape[1] / shape[0]
    assert float((small_degree.double() - mean).abs().max()) <= 1.0
    assert mean_ring_distance(indices, shape) < 0.02


def test_single_draws_follow_the_distance_law():
    # one link per smaller-side node: its ring offset is drawn with p ∝ (1 + |d|)^(-(1-r)/r)
    n_small, n_large, r = 40, 41, 0.6
    observed = torch.zeros(n_large, dtype=torch.float64)
    for seed in range(100):
        small, large = brf(n_small, n_large, 1 / n_large, r=r, generator=torch.Generator().manual_seed(seed))
        centre = torch.round(small.double() * n_large / n_small).long()
        offset = (large - centre + 20) % n_large - 20  # in [-20, 20]
        observed += torch.bincount(offset + 20, minlength=n_large).double()
    weight = (1.0 + torch.arange(-20, 21).abs().double()) ** (-(1 - r) / r)
    expected = weight / weight.sum() * observed.sum()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 73.4  # 99.9% quantile, 40 degrees of freedom


def test_r_one_is_uniform_and_locality_grows_as_r_falls():
    shape = (1568, 784)
    distances = [mean_ring_distance(brf(*shape, 0.02, r=r, generator=torch.Generator().manual_seed(0)), shape)
                 for r in (0.0, 0.1, 0.25, 0.5, 1.0)]
    assert distances == sorted(distances)
    assert abs(distances[-1] - mean_ring_distance(bsw(*shape, 0.02, beta=1.0), shape)) < 0.02


def test_uniform_degree_distribution_gives_every_node_a_link():
    shape = (300, 3000)
    indices = brf(*shape, 0.002, r=0.25, degree_dist="uniform", generator=torch.Generator().manual_seed(0))
    small_degree = degrees(indices, shape)[0]
    assert int(small_degree.min()) >= 1
    # the extra links are thrown uniformly: degree - 1 is roughly Poisson(mean - 1)
    extra = small_degree.double() - 1
    assert abs(float(extra.var()) / float(extra.mean()) - 1) < 0.25
    assert math.isclose(float(small_degree.sum()), indices.shape[1])
