"""Topology edits against a dense shadow: sorted, unique, in bounds, values aligned with their links."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sparsenet.sparse import SparseLinear, linear_keys
from tests.devices import DEVICES


def _assert_invariants(layer, shadow):
    indices = layer.indices
    keys = linear_keys(indices, layer.in_features)
    assert indices.dtype == torch.int64 and indices.shape == (2, layer.nnz)
    assert bool((keys[1:] > keys[:-1]).all()), "indices must be sorted row-major and unique"
    assert layer.values.shape == (layer.nnz,)
    mask = torch.zeros(layer.shape, dtype=torch.bool, device=indices.device)
    mask[indices[0], indices[1]] = True
    assert torch.equal(mask, shadow != 0)
    torch.testing.assert_close(layer.to_dense(), shadow, rtol=0, atol=0)


@settings(max_examples=60, deadline=None)
@given(out_f=st.integers(1, 9), in_f=st.integers(1, 9), seed=st.integers(0, 2**31 - 1),
       steps=st.integers(1, 12), device=st.sampled_from(DEVICES))
def test_random_remove_insert_sequences_match_dense_shadow(out_f, in_f, seed, steps, device):
    g = torch.Generator().manual_seed(seed)
    layer = SparseLinear(in_f, out_f, density=0.5, generator=g, dtype=torch.float64).to(device)
    with torch.no_grad():  # distinct non-zero values so the shadow identifies every link
        layer.values.copy_(torch.arange(1, layer.nnz + 1, dtype=torch.float64))
    shadow = layer.to_dense()
    next_value = float(layer.nnz + 1)
    for _ in range(steps):
        keep = (torch.rand(layer.nnz, generator=g) < 0.6).to(device)
        old_values = layer.values.detach().clone()
        removed = layer.indices[:, ~keep]
        old_to_new = layer.remove(keep)
        assert torch.equal(layer.values.detach()[old_to_new[keep]], old_values[keep])
        assert bool((old_to_new[~keep] == -1).all())
        shadow[removed[0], removed[1]] = 0
        _assert_invariants(layer, shadow)
        absent = (shadow == 0).nonzero()
        k = int(torch.randint(0, absent.shape[0] + 1, (1,), generator=g))
        chosen = absent[torch.randperm(absent.shape[0], generator=g)[:k].to(device)].t()
        new_values = torch.arange(next_value, next_value + k, dtype=torch.float64, device=device)
        next_value += k
        before = layer.values.detach().clone()
        old_to_new, added_to_new = layer.insert(chosen, new_values)
        assert torch.equal(layer.values.detach()[old_to_new], before)
        assert torch.equal(layer.values.detach()[added_to_new], new_values)
        shadow[chosen[0], chosen[1]] = new_values
        _assert_invariants(layer, shadow)


def test_insert_defaults_to_zero_values_and_clears_cache():
    layer = SparseLinear(4, 3, indices=torch.tensor([[0, 2], [1, 3]]))
    _ = layer.cache
    old_to_new, added_to_new = layer.insert(torch.tensor([[2, 0], [0, 0]]))
    assert layer._cache is None
    assert layer.indices.tolist() == [[0, 0, 2, 2], [0, 1, 0, 3]]
    assert old_to_new.tolist() == [1, 3] and added_to_new.tolist() == [2, 0]
    assert layer.values[added_to_new].tolist() == [0.0, 0.0]


def test_edit_keeps_the_parameter_object_for_optimizers():
    layer = SparseLinear(6, 5, density=0.5)
    parameter = layer.values
    layer.remove(torch.rand(layer.nnz) < 0.5)
    layer.insert(torch.tensor([[0], [0]]) if layer.to_dense()[0, 0] == 0 else torch.empty(2, 0, dtype=torch.int64))
    assert layer.values is parameter


@pytest.mark.parametrize("new_indices,match", [
    (torch.tensor([[0, 0], [1, 1]]), "duplicate links: \\(0, 1\\)"),
    (torch.tensor([[0], [0]]), "already present in the layer: \\(0, 0\\)"),
    (torch.tensor([[3], [0]]), "out of bounds .*\\(3, 0\\)"),
    (torch.tensor([[0], [-1]]), "out of bounds"),
    (torch.tensor([[0.0], [1.0]]), "new_indices must have dtype torch.int64"),
    (torch.tensor([0, 1]), "new_indices must have shape \\(2, nnz\\)"),
])
def test_insert_rejects_bad_links(new_indices, match):
    layer = SparseLinear(3, 3, indices=torch.tensor([[0, 1], [0, 2]]))
    with pytest.raises(ValueError, match=match):
        layer.insert(new_indices)
    assert layer.indices.tolist() == [[0, 1], [0, 2]]


def test_remove_rejects_wrong_mask():
    layer = SparseLinear(3, 3, indices=torch.tensor([[0, 1], [0, 2]]))
    with pytest.raises(ValueError, match="keep must be a bool tensor of shape \\(2,\\)"):
        layer.remove(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="keep must be a bool"):
        layer.remove(torch.ones(2))


def test_state_dict_round_trip_with_a_different_topology():
    source = SparseLinear(20, 10, density=0.3, generator=torch.Generator().manual_seed(1))
    source.remove(torch.rand(source.nnz) < 0.5)
    target = SparseLinear(20, 10, density=0.1, generator=torch.Generator().manual_seed(2))
    target.load_state_dict(source.state_dict())
    assert torch.equal(target.indices, source.indices)
    assert torch.equal(target.to_dense(), source.to_dense())
    x = torch.randn(3, 20)
    torch.testing.assert_close(target(x), source(x))


def test_state_dict_with_unsorted_indices_is_rejected():
    layer = SparseLinear(4, 4, indices=torch.tensor([[0, 1], [0, 0]]))
    state = layer.state_dict()
    state["indices"] = torch.tensor([[1, 0], [0, 0]])
    with pytest.raises(ValueError, match="indices is not sorted"):
        layer.load_state_dict(state)


def test_state_dict_is_the_csr_and_the_older_indices_format_still_loads():
    source = SparseLinear(20, 10, density=0.3, generator=torch.Generator().manual_seed(1))
    state = source.state_dict()
    assert set(state) == {"values", "bias", "crow", "col"} and {state["crow"].dtype, state["col"].dtype} == {torch.int32}
    rows = torch.repeat_interleave(torch.arange(10), torch.bincount(source.indices[0], minlength=10))
    assert torch.equal(state["crow"].long().diff(), torch.bincount(rows, minlength=10))
    assert torch.equal(torch.stack((rows, state["col"].long())), source.indices)
    old = {"values": state["values"], "bias": state["bias"], "indices": source.indices}  # as saved before CSR storage
    target = SparseLinear(20, 10, density=0.1, generator=torch.Generator().manual_seed(2))
    target.load_state_dict(old)
    assert torch.equal(target.to_dense(), source.to_dense()) and set(target.state_dict()) == set(state)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(crow=s["crow"][:-1]), "not the CSR of a"),
    (lambda s: s.update(crow=s["crow"].flip(0)), "not the CSR of a"),
    (lambda s: s.update(col=s["col"][:-1]), "not the CSR of a"),
    (lambda s: s.update(col=s["col"].flip(0)), "indices is not sorted|duplicate"),
    (lambda s: s.update(col=s["col"] + 100), "out of bounds"),
])
def test_a_damaged_csr_state_is_refused(change, message):
    layer = SparseLinear(20, 10, density=0.3, generator=torch.Generator().manual_seed(1))
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    change(state)
    with pytest.raises(ValueError, match=message):
        SparseLinear(20, 10, density=0.3).load_state_dict(state)


def test_from_dense_round_trip():
    weight = torch.randn(6, 4)
    mask = torch.rand(6, 4) < 0.4
    bias = torch.randn(6)
    layer = SparseLinear.from_dense(weight, mask, bias)
    assert torch.equal(layer.to_dense(), weight * mask)
    assert layer.nnz == int(mask.sum())
    x = torch.randn(5, 4)
    torch.testing.assert_close(layer(x), x @ (weight * mask).t() + bias)
