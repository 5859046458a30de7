"""Measures against brute force on tiny graphs and against known distributions."""
import math

import numpy as np
import pytest
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


def _random_chain(seed, shapes, keep):
    g = torch.Generator().manual_seed(seed)
    chain = []
    for out_f, in_f in shapes:
        keys = torch.randperm(out_f * in_f, generator=g)[: max(1, int(out_f * in_f * keep))].sort().values
        chain.append(torch.stack((keys // in_f, keys % in_f)))
    return chain


def _active_by_definition(chain, shapes):
    """From the dense matrices: an input with a link in the first layer; a layer's output with an input link and,
    unless it is the last layer's, an output link in the next layer."""
    dense = [_dense(indices, shape) for indices, shape in zip(chain, shapes)]
    mask = [dense[0].sum(0) > 0]
    for position, a in enumerate(dense):
        active = a.sum(1) > 0
        if position + 1 < len(dense):
            active = active & (dense[position + 1].sum(0) > 0)
        mask.append(active)
    return torch.cat(mask)


def test_active_neurons_match_their_definition_on_sparse_random_chains():
    """Three and four layers at low density: neurons without inputs, without outputs, with a single output link,
    and a last input without links all occur."""
    for seed, shapes in ((0, [(6, 5), (7, 6), (4, 7)]), (1, [(5, 8), (6, 5), (6, 6), (3, 6)]), (2, [(9, 9), (9, 9)])):
        for keep in (0.1, 0.2, 0.35):
            chain = _random_chain(seed, shapes, keep)
            expected = _active_by_definition(chain, shapes)
            assert active_neurons(chain, shapes).tolist() == expected.tolist(), (seed, keep)
            assert math.isclose(active_neuron_rate(chain, shapes), float(expected.double().mean()))


def test_itop_counts_distinct_positions_of_a_tall_and_of_a_huge_layer():
    tracker = ITOPTracker((8, 4))
    assert tracker.update(torch.tensor([[4, 0], [0, 1]])) == 2 / 32  # (4, 0) and (0, 1): keys 16 and 1
    huge = ITOPTracker((5000, 5000))  # keys near 2.5e7: float32 would merge neighbours
    assert huge.update(torch.tensor([[4999, 4999], [4998, 4999]])) == 2 / 25_000_000
    assert huge.update(torch.tensor([[4999], [4999]])) == 2 / 25_000_000  # seen before: the same count


def test_powerlaw_exponent_edge_cases():
    with pytest.raises(ValueError, match=r"^need at least two positive degrees to fit a power law$"):
        powerlaw_exponent(torch.tensor([0, 0, 5]))
    alpha, x_min = powerlaw_exponent(torch.tensor([1, 2]), x_min=1)  # two degrees are enough with x_min given
    assert x_min == 1 and 1.0001 <= alpha <= 20.0
    alpha, x_min = powerlaw_exponent(torch.tensor([1, 2, 2, 3, 5]))  # no tail of 10 values: nothing fitted
    assert math.isnan(alpha) and x_min == 1
    steep, _ = powerlaw_exponent(torch.cat((torch.ones(2**22, dtype=torch.int64), torch.tensor([2]))), x_min=1)
    # one 2 among 2^22 ones: the ML alpha is about 22, past the fit's upper bound 20
    assert abs(steep - 20.0) < 1e-3
    shallow, _ = powerlaw_exponent(torch.tensor([1, 2, 3, 5, 8, 13, 40, 90, 300, 1000, 5000] * 3), x_min=1)
    assert 1.0001 <= shallow < 2.0


def _ks_fit_by_definition(x):
    """(alpha, x_min) chosen as the definition says: per candidate x_min among the observed degrees with a tail of at
    least 10 values, the ML alpha and the largest gap between the empirical CDF and the model CDF, where the model
    CDF at v is the sum of k^-alpha / zeta(alpha, x_min) over k = x_min..v (summed term by term here)."""
    from scipy import special

    from sparsenet.topology.measures import _alpha
    x = np.sort(x[x > 0].astype(float))
    best = (math.inf, None, None)
    for candidate in np.unique(x)[:-1]:
        tail = x[x >= candidate]
        if tail.size < 10:
            break
        alpha = _alpha(tail, candidate)
        distance = 0.0
        cumulative = 0.0
        for v in range(int(candidate), int(tail.max()) + 1):
            cumulative += v ** -alpha / special.zeta(alpha, candidate)
            if v in tail:
                empirical = (tail <= v).sum() / tail.size
                distance = max(distance, abs(empirical - cumulative))
        if distance < best[0]:
            best = (distance, alpha, int(candidate))
    return best[1], best[2]


def test_powerlaw_x_min_is_chosen_by_the_ks_distance_of_its_definition():
    """A power-law tail from 6 on, below it a uniform body, and zeros: the chosen x_min and alpha are those of the
    definition, and the zeros are ignored; a tail of exactly 10 values still counts."""
    g = torch.Generator().manual_seed(4)
    tail = _discrete_powerlaw(torch.rand(300, generator=g, dtype=torch.float64), 2.5, x_min=6)
    body = torch.randint(1, 6, (200,), generator=g)
    x = torch.cat((tail, body, torch.zeros(7, dtype=torch.int64)))
    expected = _ks_fit_by_definition(x.numpy())
    alpha, x_min = powerlaw_exponent(x)
    assert x_min == expected[1] and abs(alpha - expected[0]) < 1e-9
    two_top = torch.tensor([1] * 5 + [7] * 30 + [8] * 10)  # the best x_min is the second-largest degree
    expected = _ks_fit_by_definition(two_top.numpy())
    assert expected[1] == 7 and powerlaw_exponent(two_top) == pytest.approx(expected, abs=1e-9)
    ten = torch.tensor([1, 1, 2, 3, 3, 4, 5, 7, 9, 12, 20, 31])  # candidates 1 (12 values), 2 (10 values)
    expected = _ks_fit_by_definition(ten.numpy())
    alpha, x_min = powerlaw_exponent(ten)
    assert x_min == expected[1] and abs(alpha - expected[0]) < 1e-9
