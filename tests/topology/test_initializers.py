"""Contract of every initialiser: exact nnz, sorted/unique/in-bounds, seeded, O(nnz)."""
import pytest
import torch

from sparsenet.sparse import link_count
from sparsenet.topology import make_topology

FEATURES = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
INITS = [("er", {}), ("bsw", {"beta": 0.0}), ("bsw", {"beta": 0.25}), ("bsw", {"beta": 1.0}), ("bsf", {}),
         ("brf", {"r": 0.0}), ("brf", {"r": 0.25}), ("brf", {"r": 1.0}), ("brf", {"r": 0.5, "degree_dist": "uniform"}),
         ("csti", {"features": FEATURES})]
SHAPES = [(12, 6, 0.3), (6, 12, 0.3), (24, 12, 0.05), (6, 6, 1.0), (6, 6, 1e-9), (1, 6, 0.5), (6, 1, 0.5),
          (18, 18, 0.5)]


def _valid(indices, shape, density):
    assert indices.dtype == torch.int64 and indices.dim() == 2 and indices.shape[0] == 2
    assert indices.shape[1] == link_count(shape[0], shape[1], density)
    keys = indices[0] * shape[1] + indices[1]
    assert bool((keys[1:] > keys[:-1]).all())
    assert bool((indices[0] >= 0).all() and (indices[0] < shape[0]).all())
    assert bool((indices[1] >= 0).all() and (indices[1] < shape[1]).all())


@pytest.mark.parametrize("name,options", INITS, ids=[f"{n}-{o}" if n != "csti" else n for n, o in INITS])
@pytest.mark.parametrize("out_f,in_f,density", SHAPES)
def test_contract(name, options, out_f, in_f, density):
    if options.get("degree_dist") == "uniform" and link_count(out_f, in_f, density) < min(out_f, in_f):
        with pytest.raises(ValueError, match="needs at least"):
            make_topology(name, out_f, in_f, density, torch.Generator().manual_seed(0), **options)
        return
    first = make_topology(name, out_f, in_f, density, torch.Generator().manual_seed(0), **options)
    again = make_topology(name, out_f, in_f, density, torch.Generator().manual_seed(0), **options)
    _valid(first, (out_f, in_f), density)
    assert torch.equal(first, again)


@pytest.mark.parametrize("name,options", [("er", {}), ("bsw", {}), ("bsf", {}), ("brf", {})])
def test_seeds_differ(name, options):
    a = make_topology(name, 60, 40, 0.1, torch.Generator().manual_seed(1), **options)
    b = make_topology(name, 60, 40, 0.1, torch.Generator().manual_seed(2), **options)
    assert not torch.equal(a, b)


def test_unknown_names_and_options_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown init 'ws'; choose from \\['brf', 'bsf', 'bsw', 'csti', 'er'\\]"):
        make_topology("ws", 4, 4, 0.5)
    with pytest.raises(ValueError, match="unknown init options \\['gamma'\\]"):
        make_topology("bsw", 4, 4, 0.5, gamma=2)
    with pytest.raises(ValueError, match="init 'csti' needs features"):
        make_topology("csti", 4, 4, 0.5)
    with pytest.raises(ValueError, match="beta must be in \\[0, 1\\]"):
        make_topology("bsw", 4, 4, 0.5, beta=1.5)
    with pytest.raises(ValueError, match="r must be in \\[0, 1\\]"):
        make_topology("brf", 4, 4, 0.5, r=-0.1)
    with pytest.raises(ValueError, match="unknown degree_dist 'zipf'"):
        make_topology("brf", 4, 4, 0.5, degree_dist="zipf")
    with pytest.raises(ValueError, match="density must be a number in \\(0, 1\\]"):
        make_topology("er", 4, 4, 0.0)
