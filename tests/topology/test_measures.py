"""Measures against brute force on tiny graphs and against known distributions."""
import math

import torch

from sparsenet.topology import (ITOPTracker, active_neuron_rate, active_neurons, credit_assignment_paths, degrees,
                                overlap, powerlaw_exponent)


def _dense(indices, shape):
    a = torch.zeros(shape, dtype=torch.float64)
    a[indices[0], indices[1]] = 1
    return a


def _discrete_powerlaw(u, alpha, x_min):
    """Exact inverse-CDF draws of P(x) = x^-alpha / zeta(alpha, x_min), x >= x_min."""
    from scipy import special
    support = torch.arange(x_min, 100_000, dtype=torch.float64)
    pmf = support ** -alpha / float(special.zeta(alpha, x_min))
    cdf = torch.cumsum(pmf, 0)
    return support[torch.searchsorted(cdf, u).clamp(max=support.numel() - 1)].long()


def test_powerlaw_exponent_recovers_a_known_alpha():
    g = torch.Generator().manual_seed(0)
    for alpha in (2.2, 2.7, 3.2):
        u = torch.rand(20_000, generator=g, dtype=torch.float64)
        x = _discrete_powerlaw(u, alpha, x_min=3)
        estimate, _ = powerlaw_exponent(x, x_min=3)
        assert abs(estimate - alpha) < 0.05
        fitted, x_min = powerlaw_exponent(x)
        assert abs(fitted - alpha) < 0.1 and x_min >= 3


def test_chain_measures_on_a_hand_built_chain():
    # inputs 0..3 -> hidden 0..2 -> outputs 0..1
    first = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 3]])   # hidden 0 <- in 0,1; hidden 1 <- in 1; hidden 2 <- in 3
    second = torch.tensor([[0, 1], [0, 0]])             # out 0 <- hidden 0; out 1 <- hidden 0
    shapes = [(3, 4), (2, 3)]
    mask = active_neurons([first, second], shapes)
    # inputs: 0,1,3 active (2 has no link); hidden: only 0 has in and out links; outputs: both
    assert mask.tolist() == [True, True, False, True, True, False, False, True, True]
    assert math.isclose(active_neuron_rate([first, second], shapes), 6 / 9)
    brute = float((_dense(second, shapes[1]) @ _dense(first, shapes[0])).sum())
    assert credit_assignment_paths([first, second], shapes) == brute == 4.0


def test_cap_matches_dense_product_on_random_chain():
    g = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (6, 7), (3, 6)]
    chain = []
    for out_f, in_f in shapes:
        keys = torch.randperm(out_f * in_f, generator=g)[: out_f * in_f // 3].sort().values
        chain.append(torch.stack((keys // in_f, keys % in_f)))
    product = torch.ones(5, dtype=torch.float64)
    for indices, shape in zip(chain, shapes):
        product = _dense(indices, shape) @ product
    assert credit_assignment_paths(chain, shapes) == float(product.sum())


def test_degrees_overlap_itop():
    indices = torch.tensor([[0, 0, 2], [1, 2, 2]])
    rows, cols = degrees(indices, (3, 4))
    assert rows.tolist() == [2, 0, 1] and cols.tolist() == [0, 1, 2, 0]
    assert overlap(torch.tensor([1, 5, 9]), torch.tensor([5, 9, 11, 12])) == 0.5
    assert overlap(torch.tensor([1]), torch.tensor([], dtype=torch.long)) == 0.0
    tracker = ITOPTracker((3, 4))
    assert tracker.update(indices) == 3 / 12
    assert tracker.update(torch.tensor([[0, 1], [1, 1]])) == 4 / 12
