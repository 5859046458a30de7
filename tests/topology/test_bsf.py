"""BSF: power-law degrees; equal partition flattens the input side; resort aligns hidden degrees."""
import torch

from sparsenet.topology import bsf, degrees, equal_partition, powerlaw_exponent, resort


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    def ranks(x):
        order = x.double().argsort()
        r = torch.empty_like(order, dtype=torch.float64)
        r[order] = torch.arange(x.numel(), dtype=torch.float64)
        for value in x.unique():  # average ranks of ties
            tied = x == value
            r[tied] = r[tied].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def test_output_degrees_follow_a_power_law():
    for seed in (0, 1):
        indices = bsf(10_000, 10_000, 0.001, torch.Generator().manual_seed(seed))
        alpha, x_min = powerlaw_exponent(degrees(indices, (10_000, 10_000))[0])
        assert 2.0 <= alpha <= 3.5, (alpha, x_min)


def test_hubs_exist_unlike_er():
    indices = bsf(2000, 2000, 0.005, torch.Generator().manual_seed(0))
    row_degree = degrees(indices, (2000, 2000))[0]
    assert int(row_degree.max()) > 5 * float(row_degree.double().mean())


def test_equal_partition_flattens_inputs_and_keeps_outputs():
    shape = (1568, 784)
    before = bsf(*shape, 0.01, torch.Generator().manual_seed(0))
    after = equal_partition(before, shape, torch.Generator().manual_seed(1))
    rows_before, cols_before = degrees(before, shape)
    rows_after, cols_after = degrees(after, shape)
    assert torch.equal(rows_before, rows_after)
    mean = after.shape[1] / shape[1]
    assert float((cols_after.double() - mean).abs().max()) <= 1.0
    assert float(cols_before.double().std()) > 3.0  # it was not flat to begin with
    keys = after[0] * shape[1] + after[1]
    assert bool((keys[1:] > keys[:-1]).all())


def test_resort_aligns_hidden_degrees():
    shapes = [(1568, 784), (1568, 1568), (1568, 1568)]
    g = torch.Generator().manual_seed(0)
    layers = [bsf(*shape, 0.01, g) for shape in shapes]
    before = _spearman(degrees(layers[0], shapes[0])[0], degrees(layers[1], shapes[1])[1])
    sorted_layers = resort(layers, shapes, g)
    assert torch.equal(sorted_layers[0], layers[0])
    for i in range(2):
        in_degree = degrees(sorted_layers[i], shapes[i])[0]
        out_degree = degrees(sorted_layers[i + 1], shapes[i + 1])[1]
        assert _spearman(in_degree, out_degree) >= 0.9
        # relabelling columns keeps every layer's degree multiset and its rows
        assert torch.equal(degrees(sorted_layers[i + 1], shapes[i + 1])[0], degrees(layers[i + 1], shapes[i + 1])[0])
        assert torch.equal(out_degree.sort().values, degrees(layers[i + 1], shapes[i + 1])[1].sort().values)
    assert abs(before) < 0.2
