"""CSTI links the most correlated input pairs, tiled to the layer's shape."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenet.topology import abs_correlation, csti

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist" / "train-images-idx3-ubyte.gz"


def _correlated_block(n_samples=400, n_features=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, n_features, generator=g)
    shared = torch.randn(n_samples, generator=g)
    x[:, :4] = shared.unsqueeze(1) + 0.05 * torch.randn(n_samples, 4, generator=g)  # features 0..3 move together
    x[:, 7] = 3.0  # constant feature
    return x


def test_correlation_matrix_definition():
    x = _correlated_block()
    corr = abs_correlation(x)
    with np.errstate(invalid="ignore", divide="ignore"):  # the constant feature has no correlation
        reference = torch.from_numpy(np.corrcoef(x.double().numpy(), rowvar=False)).abs()
    alive = [i for i in range(20) if i != 7]
    off_diagonal = ~torch.eye(19, dtype=torch.bool)
    torch.testing.assert_close(corr[alive][:, alive][off_diagonal], reference[alive][:, alive][off_diagonal])
    assert bool((corr[7] == 0).all() and (corr[:, 7] == 0).all() and (corr.diagonal() == 0).all())


def test_strongest_pairs_are_linked_in_every_tile():
    x = _correlated_block()
    out_f, in_f = 40, 20  # two tiles stacked vertically
    indices = csti(x, out_f, density=24 / (out_f * in_f), generator=torch.Generator().manual_seed(0))
    assert indices.shape[1] == 24  # the 12 ordered pairs within the block, in both tiles
    links = set(map(tuple, indices.t().tolist()))
    block = {(i, j) for i in range(4) for j in range(4) if i != j}
    assert links == block | {(i + 20, j) for i, j in block}


@pytest.mark.parametrize("out_f,in_f", [(30, 20), (45, 27), (7, 20), (50, 13)])
@pytest.mark.parametrize("density", [0.05, 0.3])
def test_csti_cut_tiling_takes_the_largest_entries_of_the_tiled_matrix(out_f, in_f, density):
    # The definition: tile C to cover the layer, cut it at the layer's edge, keep the nnz largest entries.
    x = _correlated_block()
    tiled = abs_correlation(x).repeat(-(-out_f // 20), -(-in_f // 20))[:out_f, :in_f]
    indices = csti(x, out_f, density, in_features=in_f, generator=torch.Generator().manual_seed(1))
    nnz = round(density * out_f * in_f)
    keys = indices[0] * in_f + indices[1]
    assert indices.shape == (2, nnz) and bool((keys[1:] > keys[:-1]).all())
    linked = torch.zeros(out_f, in_f, dtype=torch.bool)
    linked[indices[0], indices[1]] = True
    assert float(tiled[linked].min()) >= float(tiled[~linked].max())


@pytest.mark.skipif(not MNIST.exists(), reason="../shared/data/mnist not present")
def test_mnist_links_join_correlated_neighbouring_pixels():
    with gzip.open(MNIST) as f:
        images = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).view(-1, 784)[:10_000].float()
    indices = csti(images, 1568, 0.01, generator=torch.Generator().manual_seed(0))
    assert indices.shape == (2, 12293)
    corr = abs_correlation(images)
    linked = corr[indices[0] % 784, indices[1]]
    assert float(linked.min()) >= float(torch.quantile(corr.flatten(), 0.98))
    # strongly correlated MNIST pixels are mostly spatial neighbours
    row_a, col_a = (indices[0] % 784) // 28, (indices[0] % 784) % 28
    row_b, col_b = indices[1] // 28, indices[1] % 28
    assert float(((row_a - row_b).abs() + (col_a - col_b).abs()).double().median()) <= 3
