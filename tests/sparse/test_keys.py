"""Linear keys, their inverse and the first-occurrence mask by value; each part of a key's input (row, column,
the layer's width) moves the key; the index dtype re-decided from the link count on every edit; the transposed
cache rebuilt after a second edit."""
import pytest
import torch

import sparsenet.sparse.csr as csr
from sparsenet.sparse import SparseLinear
from sparsenet.sparse.keys import first_occurrence, keys_to_indices, link_count, linear_keys


def test_linear_keys_and_their_inverse_by_value():
    indices = torch.tensor([[0, 1, 2, 2], [4, 0, 3, 1]])
    keys = linear_keys(indices, 5)
    assert keys.tolist() == [4, 5, 13, 11]  # row * 5 + col
    assert torch.equal(keys_to_indices(keys, 5), indices)
    assert keys_to_indices(torch.tensor([0, 6, 34]), 7).tolist() == [[0, 0, 4], [0, 6, 6]]


@pytest.mark.parametrize("changed", ["row", "col", "in_features"])
def test_a_change_in_each_part_of_the_input_changes_the_key(changed):
    row, col, in_features = 3, 2, 7
    before = int(linear_keys(torch.tensor([[row], [col]]), in_features))
    if changed == "row":
        row += 1
    elif changed == "col":
        col += 1
    else:
        in_features += 1
    after = int(linear_keys(torch.tensor([[row], [col]]), in_features))
    assert before == 23 and after == {"row": 30, "col": 24, "in_features": 26}[changed]


def test_first_occurrence_marks_only_the_first_of_each_repeated_value():
    values = torch.tensor([5, 3, 5, 5, 1, 3, 7])  # 5 three times: the second and third are repeats
    assert first_occurrence(values).tolist() == [True, True, False, False, True, False, True]
    assert first_occurrence(torch.tensor([2, 2])).tolist() == [True, False]
    assert first_occurrence(torch.tensor([4])).tolist() == [True]


@pytest.mark.parametrize("out_f,in_f,density,count", [
    (10, 10, 0.25, 25), (3, 5, 0.1, 2), (4, 5, 0.125, 2), (4, 5, 0.375, 8), (7, 3, 0.01, 1), (6, 6, 1.0, 36)])
def test_link_count_rounds_half_to_even_and_keeps_at_least_one(out_f, in_f, density, count):
    assert link_count(out_f, in_f, density) == count  # 1.5 -> 2, 2.5 -> 2, 7.5 -> 8, 0.21 -> 1


def test_index_dtype_follows_the_link_count_through_every_edit(monkeypatch):
    """With the limit at 4 links (sizes 3 x 3 stay below it), an insert that brings the layer to 4 links turns its
    CSR int64, a second insert keeps it so, and a remove back to 3 links turns it int32 again."""
    monkeypatch.setattr(csr, "INT32_LIMIT", 4)
    layer = SparseLinear(3, 3, indices=torch.tensor([[0, 1, 2], [0, 1, 2]]), dtype=torch.float64)
    assert layer.crow.dtype == layer.col.dtype == torch.int32
    layer.insert(torch.tensor([[0], [2]]))
    assert layer.crow.dtype == layer.col.dtype == layer.cache.perm.dtype == torch.int64
    layer.insert(torch.tensor([[2], [0]]))
    assert layer.crow.dtype == layer.col.dtype == torch.int64
    layer.remove(torch.tensor([True, False, True, False, True]))
    assert layer.nnz == 3 and layer.crow.dtype == layer.col.dtype == layer.cache.col_t.dtype == torch.int32
    x = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.to_dense().t() + layer.bias.detach(), rtol=0, atol=1e-12)


def _assert_matches_dense(layer: SparseLinear, x: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    layer.values.grad = None
    layer(x).square().sum().backward()
    weight = layer.to_dense().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    (x_ref @ weight.t() + layer.bias.detach()).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.values.grad, weight.grad[layer.indices[0], layer.indices[1]], rtol=0, atol=1e-12)


def test_the_transposed_cache_is_rebuilt_after_each_of_two_edits():
    """Forward and backward (the input gradient uses the transposed cache) after a first and a second edit, each
    against the dense layer: a cache kept from the first edit would give the second a stale Wᵀ."""
    layer = SparseLinear(6, 5, density=0.5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 6, dtype=torch.float64)
    _assert_matches_dense(layer, x)
    first = layer.cache
    keep = torch.ones(layer.nnz, dtype=torch.bool)
    keep[::3] = False
    layer.remove(keep)
    _assert_matches_dense(layer, x)
    second = layer.cache
    absent = (layer.to_dense() == 0).nonzero()[:2].t()
    layer.insert(absent, torch.tensor([1.5, -2.0], dtype=torch.float64))
    _assert_matches_dense(layer, x)
    assert layer.cache is not second and second is not first
    assert layer.to_dense()[absent[0], absent[1]].tolist() == [1.5, -2.0]


def test_an_edit_applied_twice_keeps_each_surviving_value_with_its_link():
    """Remove, remove again, insert, insert again: after each, every link holds the value it had (a dense shadow
    edited the same way), and the position maps point each old link to its new place."""
    g = torch.Generator().manual_seed(1)
    layer = SparseLinear(7, 4, density=0.6, dtype=torch.float64, generator=g)
    shadow = layer.to_dense().detach().clone()
    for step in range(2):
        before = layer.values.detach().clone()
        keep = torch.rand(layer.nnz, generator=g) < 0.6
        rows, cols = layer.indices
        old_to_new = layer.remove(keep)
        shadow[rows[~keep], cols[~keep]] = 0
        assert torch.equal(layer.values.detach()[old_to_new[keep]], before[keep])
        assert bool((old_to_new[~keep] == -1).all())
        torch.testing.assert_close(layer.to_dense(), shadow, rtol=0, atol=0)
    for step in range(2):
        before = layer.values.detach().clone()
        absent = (shadow == 0).nonzero()[step::3][:2].t()
        new_values = torch.tensor([3.0 + step, -4.0 - step], dtype=torch.float64)
        old_to_new, added_to_new = layer.insert(absent, new_values)
        shadow[absent[0], absent[1]] = new_values
        assert torch.equal(layer.values.detach()[old_to_new], before)
        assert torch.equal(layer.values.detach()[added_to_new], new_values)
        torch.testing.assert_close(layer.to_dense(), shadow, rtol=0, atol=0)


@pytest.mark.parametrize("count,listed", [
    (5, "(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)"),
    (7, "(0, 0), (0, 1), (0, 2), (0, 3), (0, 4) and 2 more"),
])
def test_an_error_lists_at_most_five_links_and_counts_the_rest(count, listed):
    out_of_bounds = torch.stack((torch.full((count,), 9), torch.arange(count)))
    with pytest.raises(ValueError) as error:
        SparseLinear(8, 3, indices=out_of_bounds)
    assert str(error.value) == f"indices out of bounds for shape (3, 8): {listed.replace('(0,', '(9,')}"


def test_inserting_the_last_present_link_again_is_refused():
    """The presence check of an insert clamps its search position to the last link: a new link equal to the last
    present one (or sorting after it) must still be compared with the last one."""
    layer = SparseLinear(4, 3, indices=torch.tensor([[0, 1, 2], [1, 2, 3]]))
    with pytest.raises(ValueError, match=r"^new_indices already present in the layer: \(2, 3\)$"):
        layer.insert(torch.tensor([[2], [3]]))
    layer.insert(torch.tensor([[2], [2]]))  # before the last one, absent: accepted
    assert layer.indices.tolist() == [[0, 1, 2, 2], [1, 2, 2, 3]]


def test_first_occurrence_is_a_bool_mask_of_the_earliest_index_of_each_value():
    """Many repeats of few values: an unstable sort would mark a later repeat as the first."""
    values = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(0))
    seen, expected = set(), []
    for value in values.tolist():
        expected.append(value not in seen)
        seen.add(value)
    mask = first_occurrence(values)
    assert mask.dtype == torch.bool and mask.tolist() == expected


def test_repr_states_sizes_links_density_and_bias():
    links = torch.tensor([[0, 2], [1, 3]])
    assert repr(SparseLinear(4, 3, indices=links)) == \
        "SparseLinear(in_features=4, out_features=3, nnz=2, density=0.1667, bias=True)"
    assert repr(SparseLinear(4, 3, indices=links, bias=False)).endswith("bias=False)")


def _t(pairs):
    return torch.tensor(pairs).t().reshape(2, -1)


# a 3 x 4 layer (rows 0..2, columns 0..3); set_topology wants its links sorted, the constructor sorts them itself
SORTED_REFUSALS = [
    ([[0, 1], [0, 4]], "indices out of bounds for shape (3, 4): (0, 4)"),  # a column equal to the width
    ([[3, 0]], "indices out of bounds for shape (3, 4): (3, 0)"),
    ([[0, -1], [-1, 2]], "indices out of bounds for shape (3, 4): (0, -1), (-1, 2)"),
    ([[0, 1], [0, 1]], "indices has duplicate links: (0, 1)"),
    ([[0, 1], [1, 0], [1, 0], [2, 2]], "indices has duplicate links: (1, 0)"),
    ([[0, 1], [0, 2], [1, 1], [1, 0]], "indices is not sorted row-major at: (1, 0)"),  # the step down, not after it
    ([[0, 3], [1, 0], [0, 2], [2, 1]], "indices is not sorted row-major at: (0, 2)"),
]


@pytest.mark.parametrize("pairs,message", SORTED_REFUSALS)
def test_set_topology_names_the_offending_links(pairs, message):
    layer = SparseLinear(4, 3, density=0.5)
    with pytest.raises(ValueError) as error:
        layer.set_topology(_t(pairs))
    assert str(error.value) == message


@pytest.mark.parametrize("pairs,message", [
    ([[2, 1], [0, 3], [2, 1]], "indices has duplicate links: (2, 1)"),  # repeats far apart, any order
    ([[1, 1], [0, 0], [2, 3], [0, 0], [1, 1]], "indices has duplicate links: (0, 0), (1, 1)"),
])
def test_the_constructor_names_repeated_links_in_any_order(pairs, message):
    with pytest.raises(ValueError) as error:
        SparseLinear(4, 3, indices=_t(pairs))
    assert str(error.value) == message


def test_a_link_list_of_another_type_is_named():
    with pytest.raises(ValueError, match=r"^indices must be a torch.Tensor, got list$"):
        SparseLinear(4, 3, indices=[[0], [1]])


def test_the_transposed_cache_lists_each_column_by_ascending_row():
    """Wᵀ's CSR by value on a tiny layer, and on a full 12 x 3 layer (12 links per column: a stable sort of the
    columns keeps each column's rows ascending, which sorted CSR needs)."""
    layer = SparseLinear(3, 3, indices=_t([[0, 1], [0, 2], [1, 0], [1, 2], [2, 1], [2, 2]]))
    cache = layer.cache
    assert cache.crow_t.tolist() == [0, 1, 3, 6] and cache.col_t.tolist() == [1, 0, 2, 0, 1, 2]
    assert cache.perm.tolist() == [2, 0, 4, 1, 3, 5]
    full = SparseLinear.from_dense(torch.ones(12, 3)).cache
    assert full.col_t.tolist() == list(range(12)) * 3 and full.perm.tolist() == [3 * r + c for c in range(3)
                                                                                  for r in range(12)]


def test_expand_makes_no_host_sync():
    from tests.syncs import SyncCounter
    layer = SparseLinear(5, 4, density=0.5)
    with SyncCounter() as syncs:
        indices = csr.expand(layer.crow, layer.col)
    assert syncs.count == 0, syncs.by_op
    assert torch.equal(indices, layer.indices)


def test_row_pointers_count_exactly_past_float32_integers():
    """2²⁴ + 1 links in one row: pointers accumulated in float32 would round to 2²⁴."""
    rows = torch.zeros(2**24 + 1, dtype=torch.int64)
    assert csr.row_pointers(rows, 2, torch.int64).tolist() == [0, 2**24 + 1, 2**24 + 1]


def test_an_int64_layer_keeps_its_own_copy_of_the_columns(monkeypatch):
    monkeypatch.setattr(csr, "INT32_LIMIT", 0)
    indices = torch.tensor([[0, 1], [2, 0]])
    layer = SparseLinear(3, 2, density=0.5)
    layer.set_topology(indices)
    indices[1, 0] = 1
    assert layer.col.dtype == torch.int64 and layer.col.tolist() == [2, 0]


@pytest.mark.parametrize("in_f,out_f,density,bound", [(100, 50, 0.5, 50**-0.5), (8, 100, 0.05, 1.0)])
def test_initial_values_and_bias_are_uniform_within_one_over_the_root_of_the_mean_fan_in(in_f, out_f, density, bound):
    """fan-in = nnz / out: 50 (bound 0.1414); 0.4 for the sparse second layer, below 1, so the bound is 1."""
    layer = SparseLinear(in_f, out_f, density=density, generator=torch.Generator().manual_seed(0))
    for tensor in (layer.values.detach(), layer.bias.detach()):
        assert tensor.abs().max() <= bound and tensor.abs().max() > 0.9 * bound


def test_a_seed_fixes_links_values_and_bias_whatever_the_global_generator():
    def build(seed):
        torch.rand(5)  # moves the global generator between the layers
        layer = SparseLinear(9, 7, density=0.3, generator=torch.Generator().manual_seed(seed))
        return layer.indices, layer.values.detach(), layer.bias.detach()
    first, again, other = build(0), build(0), build(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first[1:], other[1:])) and not torch.equal(first[0], other[0])


@pytest.mark.parametrize("kwargs", [{}, {"indices": torch.tensor([[0], [0]]), "density": 0.5}])
def test_exactly_one_of_indices_or_density_by_message(kwargs):
    with pytest.raises(ValueError) as error:
        SparseLinear(3, 2, **kwargs)
    assert str(error.value) == "give exactly one of indices or density"


@pytest.mark.parametrize("in_f,out_f,density,message", [
    (0, 3, 0.5, "in_features must be a positive int, got 0"),
    (3, -1, 0.5, "out_features must be a positive int, got -1"),
    (3, 2.0, 0.5, "out_features must be a positive int, got 2.0"),
    (True, 2, 0.5, "in_features must be a positive int, got True"),
    (3, 2, 0, "density must be a number in (0, 1], got 0"),
    (3, 2, 1.5, "density must be a number in (0, 1], got 1.5"),
    (3, 2, "0.5", "density must be a number in (0, 1], got '0.5'"),
])
def test_sizes_and_density_are_refused_by_name_and_value(in_f, out_f, density, message):
    with pytest.raises(ValueError) as error:
        SparseLinear(in_f, out_f, density=density)
    assert str(error.value) == message
