"""BSW against its statistical definition: lattice at beta=0, ER at beta=1, a beta share rewired."""
import math

import torch

from sparsenet.sparse import link_count
from sparsenet.topology import bsw, degrees, lattice
from sparsenet.topology.ring import ring_distance


def _window_share(indices, shape, half_width):
    n_large, n_small = max(shape), min(shape)
    large, small = (indices[0], indices[1]) if shape[0] >= shape[1] else (indices[1], indices[0])
    return ring_distance(small.double(), large.double() * n_small / n_large, n_small) <= half_width


def test_beta_zero_is_a_balanced_ring_lattice():
    for shape in [(1568, 784), (784, 1568), (300, 300), (1000, 7)]:
        indices = bsw(*shape, 0.01 if shape[1] > 10 else 0.3, beta=0.0, generator=torch.Generator().manual_seed(0))
        nnz = indices.shape[1]
        for degree, n in zip(degrees(indices, shape), shape):
            assert float((degree.double() - nnz / n).abs().max()) <= 1.0
        half_width = math.ceil(nnz / max(shape)) / 2 + 1
        assert bool(_window_share(indices, shape, half_width).all())
        keys = indices[0] * shape[1] + indices[1]
        assert nnz == link_count(*shape, 0.01 if shape[1] > 10 else 0.3) and keys.unique().numel() == nnz


def test_beta_one_degree_variance_matches_random_placement():
    shape, density = (2000, 500), 0.02
    indices = bsw(*shape, density, beta=1.0, generator=torch.Generator().manual_seed(3))
    row_degree = degrees(indices, shape)[0].double()
    # a row's degree under uniform placement of nnz links is hypergeometric(N=out*in, K=in, n=nnz)
    n_total, nnz = shape[0] * shape[1], indices.shape[1]
    p = shape[1] / n_total
    expected_var = nnz * p * (1 - p) * (n_total - nnz) / (n_total - 1)
    assert abs(float(row_degree.var()) / expected_var - 1) < 0.1  # 2000 rows: s.e. of the ratio ~ 0.03


def _band_positions(shape, half_width):
    """Number of (large, small) positions within ``half_width`` of the lattice diagonal, counted exactly."""
    n_large, n_small = max(shape), min(shape)
    centre = torch.arange(n_large, dtype=torch.float64) * n_small / n_large
    reach = math.ceil(half_width) + 1
    candidates = (torch.floor(centre).long().unsqueeze(1) + torch.arange(-reach, reach + 1)) % n_small
    return int((ring_distance(candidates.double(), centre.unsqueeze(1), n_small) <= half_width).sum())


def test_intermediate_beta_rewires_that_share_of_links():
    shape, density = (1568, 1568), 0.01
    nnz = link_count(*shape, density)
    half_width = nnz / max(shape) / 2 + 1
    band = _band_positions(shape, half_width)
    n_total = shape[0] * shape[1]
    for beta in (0.1, 0.25, 0.5, 0.75):
        indices = bsw(*shape, density, beta=beta, generator=torch.Generator().manual_seed(int(beta * 100)))
        outside = 1.0 - float(_window_share(indices, shape, half_width).double().mean())
        # rewired links are uniform over positions not kept; those in the band stay "inside"
        kept = (1 - beta) * nnz
        expected = beta * (1 - (band - kept) / (n_total - kept))
        standard_error = math.sqrt(beta * (1 - beta) / nnz)
        assert abs(outside - expected) < 3 * standard_error, (beta, outside, expected)


def test_rewired_links_may_land_on_vacated_lattice_positions():
    """Given K kept lattice links, the nnz − K rewired ones are uniform over the total − K positions not held
    by a kept link, nnz − K of which are the vacated lattice positions: E[links on the lattice] =
    E_K[K + (nnz − K)² / (total − K)], K ~ Binomial(nnz, 1 − beta). Averaged over 60 seeds."""
    shape, density = (40, 30), 0.3
    nnz, total = link_count(*shape, density), shape[0] * shape[1]
    grid = lattice(*shape, nnz)
    on_lattice = torch.zeros(total, dtype=torch.bool)
    on_lattice[grid[0] * shape[1] + grid[1]] = True
    for beta in (0.5, 1.0):
        draws = [bsw(*shape, density, beta=beta, generator=torch.Generator().manual_seed(seed)) for seed in range(60)]
        counts = torch.stack([on_lattice[links[0] * shape[1] + links[1]].sum() for links in draws]).double()
        expected = sum(math.comb(nnz, k) * (1 - beta) ** k * beta ** (nnz - k) * (k + (nnz - k) ** 2 / (total - k))
                       for k in range(nnz + 1))
        standard_error = float(counts.std()) / math.sqrt(counts.numel())
        assert abs(float(counts.mean()) - expected) < 4 * standard_error + 0.5, (beta, float(counts.mean()), expected)
