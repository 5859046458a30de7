"""init_sparse_model: densities per layer, topology per layer, values, fixes across layers."""
import pytest
import torch
from torch import nn

from sparsenet.sparse import SparseLinear, link_count
from sparsenet.topology import degrees, init_sparse_model, layer_densities, sparse_layers


def _mlp():
    return nn.Sequential(SparseLinear(784, 1568, density=0.5), nn.ReLU(), SparseLinear(1568, 1568, density=0.5),
                         nn.ReLU(), SparseLinear(1568, 1568, density=0.5), nn.ReLU(), nn.Linear(1568, 10))


def test_uniform_init_sets_every_sparse_layer():
    model = _mlp()
    init_sparse_model(model, "bsw", 0.01, weights="swi", generator=torch.Generator().manual_seed(0), beta=0.25)
    for layer in [m for m in model if isinstance(m, SparseLinear)]:
        assert layer.nnz == link_count(layer.out_features, layer.in_features, 0.01)
        assert float(layer.values.detach().std()) > 0
    assert model[6].weight.shape == (10, 1568)  # dense output layer untouched


def test_same_seed_same_model():
    a, b = _mlp(), _mlp()
    init_sparse_model(a, "bsf", 0.01, generator=torch.Generator().manual_seed(3), equal_partition=True, resort=True)
    init_sparse_model(b, "bsf", 0.01, generator=torch.Generator().manual_seed(3), equal_partition=True, resort=True)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        if x.dtype == torch.int64:
            assert torch.equal(x, y)
    assert torch.equal(a[0].values, b[0].values)


def test_equal_partition_applies_to_the_first_layer():
    model = _mlp()
    init_sparse_model(model, "bsf", 0.01, generator=torch.Generator().manual_seed(0), equal_partition=True)
    in_degree = degrees(model[0].indices, model[0].shape)[1].double()
    assert float((in_degree - in_degree.mean()).abs().max()) <= 1.0


def test_erk_keeps_the_total_and_favours_small_layers():
    shapes = [(100, 784), (100, 100), (2, 100)]
    densities = layer_densities(shapes, 0.3, "erk")
    total = sum(d * o * i for d, (o, i) in zip(densities, shapes))
    assert abs(total - 0.3 * sum(o * i for o, i in shapes)) < 1e-6
    assert densities[0] < densities[1] < densities[2]
    assert densities[2] == 1.0  # the 2x100 layer would exceed 1 and is capped
    ratio = (100 + 784) / (100 * 784) / ((100 + 100) / (100 * 100))
    assert abs(densities[0] / densities[1] - ratio) < 1e-12
    with pytest.raises(ValueError, match="unknown density distribution 'log'"):
        layer_densities(shapes, 0.1, "log")


def test_csti_model_init_uses_features():
    features = torch.randn(200, 784, generator=torch.Generator().manual_seed(0))
    model = _mlp()
    init_sparse_model(model, "csti", 0.01, features=features, generator=torch.Generator().manual_seed(0))
    assert model[2].nnz == link_count(1568, 1568, 0.01)


def test_copy_topology_moves_a_saved_transformer_topology_into_a_fresh_model(tmp_path):
    from sparsenet.models import Transformer
    from sparsenet.topology import copy_topology
    from sparsenet.train.checkpoint import load_topologies, save_checkpoint

    def transformer(seed):
        model = Transformer(20, d_model=16, heads=2, layers=1, d_ff=32, density=0.3,
                            generator=torch.Generator().manual_seed(seed))
        init_sparse_model(model, "bsw", 0.3, "xavier", generator=torch.Generator().manual_seed(seed), beta=0.25)
        return model

    source, target = transformer(0), transformer(1)
    save_checkpoint(tmp_path / "checkpoint.pt", {"model": source.state_dict(), "step": 7})
    copy_topology(target, load_topologies(tmp_path), "xavier", torch.Generator().manual_seed(2))
    pairs = list(zip(sparse_layers(source), sparse_layers(target)))
    assert len(pairs) == 16 and all(torch.equal(s.indices, t.indices) for s, t in pairs)
    assert not any(torch.equal(s.values, t.values) for s, t in pairs)  # values drawn afresh
    assert all(t.values.std() > 0 for _, t in pairs)
    with pytest.raises(ValueError, match="does not fit this model"):
        copy_topology(Transformer(20, d_model=16, heads=2, layers=2, d_ff=32, density=0.3), load_topologies(tmp_path))
    dense = Transformer(20, d_model=16, heads=2, layers=1, d_ff=32)
    save_checkpoint(tmp_path / "dense.pt", {"model": dense.state_dict()})
    with pytest.raises(ValueError, match="holds no sparse layer"):
        load_topologies(tmp_path / "dense.pt")
