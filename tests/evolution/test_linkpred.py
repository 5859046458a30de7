"""CH scores against brute-force path enumeration, in every block representation."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sparsenet.evolution.linkpred as linkpred
from sparsenet.evolution.linkpred import VARIANTS, ch_score_blocks, ch_scores
from tests.devices import DEVICES
from tests.evolution.reference import brute_force_ch


def _random_layer(m, n, density, seed):
    g = torch.Generator().manual_seed(seed)
    nnz = max(1, int(round(density * m * n)))
    keys = torch.randperm(m * n, generator=g)[:nnz].sort().values
    return torch.stack((keys // n, keys % n))


def _as_dict(scores):
    return {tuple(k): v for k, v in zip(scores.indices().t().tolist(), scores.values().tolist())}


def _assert_matches(indices, shape, variant, **kwargs):
    expected = brute_force_ch(indices.cpu(), shape, variant)
    got = _as_dict(ch_scores(indices, shape, variant, **kwargs))
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-6 * max(1.0, value), (key, got[key], value)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), density=st.floats(0.05, 0.9), seed=st.integers(0, 10**6),
       variant=st.sampled_from(VARIANTS), block_rows=st.sampled_from([None, 1, 3]), device=st.sampled_from(DEVICES))
def test_matches_brute_force_on_random_graphs(m, n, density, seed, variant, block_rows, device):
    _assert_matches(_random_layer(m, n, density, seed).to(device), (m, n), variant, block_rows=block_rows)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fill,dense", [(0.0, True), (float("inf"), False)])  # force one representation
@pytest.mark.parametrize("device", DEVICES)
def test_both_block_representations_match(variant, fill, dense, device, monkeypatch):
    monkeypatch.setattr(linkpred, "DENSE_FILL", fill)
    monkeypatch.setattr(linkpred, "PRODUCT_FILL", fill)
    for seed in range(5):
        indices = _random_layer(12, 10, 0.25, seed).to(device)
        _assert_matches(indices, (12, 10), variant, block_rows=4)
        kinds = {block.dense is not None for block in ch_score_blocks(indices, (12, 10), variant, block_rows=4)}
        assert kinds == {dense}


def test_hand_computed_example():
    # outputs u0, u1; inputs v0, v1, v2. Links: u0-v0, u1-v0, u1-v1. Absent (u0, v1) has one path u0-v0-u1-v1.
    indices = torch.tensor([[0, 1, 1], [0, 0, 1]])
    scores = _as_dict(ch_scores(indices, (2, 3), "CH3-L3p"))
    # LC = {v0, u1}; de(v0) = 0 (neighbours u0, u1 are seed/LC), de(u1) = 0 (v0 in LC, v1 seed) -> 1/sqrt(1*1)
    assert scores == {(0, 1): 1.0}
    assert _as_dict(ch_scores(indices, (2, 3), "CH3-L3n")) == {(0, 1): 2.0}
    assert _as_dict(ch_scores(indices, (2, 3), "CH2-L3n")) == {(0, 1): 4.0}  # each z has di = 1


def test_unknown_variant_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown link-prediction variant 'CH4'; choose from \\['CH3-L3p'"):
        ch_scores(torch.tensor([[0], [0]]), (1, 1), "CH4")


def test_memory_budget_splits_blocks():
    indices = _random_layer(40, 30, 0.2, 0)
    blocks = list(ch_score_blocks(indices, (40, 30), "CH3-L3n", memory_budget=30 * 3 * 4 * 5 + 40 * 4 * 5))
    assert len(blocks) >= 8 and blocks[0].start == 0 and blocks[-1].stop == 40
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))


def _block_scores(blocks):
    """{(row, col): score} from score blocks of either representation."""
    got = {}
    for block in blocks:
        if block.dense is not None:
            local, col = block.dense.nonzero(as_tuple=True)
            value = block.dense[local, col]
        else:
            local, col, value = block.sparse
        got.update({(r + block.start, c): v for r, c, v in zip(local.tolist(), col.tolist(), value.tolist())})
    return got


def _with_dead_rows(indices, dead):
    return indices[:, ~torch.isin(indices[0], torch.tensor(dead))]


@pytest.mark.parametrize("variant", ["CH3-L3n", "CH2-L3n"])
def test_dense_ish_layer_never_builds_pair_lists(variant, monkeypatch):
    # A 50%-dense layer's pair lists hold Σ degree² entries (16 GiB for the 50% MNIST CHTss MLP): past the
    # budget every scored row must be computed dense, including rows next to dead ones (no paths).
    def refuse(*args):
        raise AssertionError("pair lists built for a layer whose pair lists exceed the budget")
    indices = _with_dead_rows(_random_layer(24, 20, 0.5, 1), [0, 5, 6, 23])
    expected = ch_scores(indices, (24, 20), variant)
    monkeypatch.setattr("sparsenet.evolution.graph._pair_counts", refuse)
    budget = 32 * 24 * 20 * 2  # below the pair lists' Σ degree² × 32 bytes, above a dense row's cost
    blocks = list(ch_score_blocks(indices, (24, 20), variant, memory_budget=budget))
    assert all(block.dense is not None for block in blocks if block.sparse is None or block.sparse[0].numel())
    got = {}
    for block in blocks:
        if block.dense is not None:
            local, col = block.dense.nonzero(as_tuple=True)
            got.update({(r + block.start, c): v for r, c, v in zip(local.tolist(), col.tolist(),
                                                                   block.dense[local, col].tolist())})
    assert set(got) == set(_as_dict(expected))
    for key, value in _as_dict(expected).items():
        assert abs(got[key] - value) <= 1e-5 * max(1.0, value)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rows_without_paths_neither_split_blocks_nor_score(variant):
    # Dead neurons (no links, so no length-3 paths) between scored rows used to cut a dense run into many
    # small blocks, each repeating the layer-wide E_V product (update time 6 s -> 160 s in the MNIST run).
    indices = _with_dead_rows(_random_layer(40, 30, 0.3, 2), list(range(1, 40, 3)))
    blocks = list(ch_score_blocks(indices, (40, 30), variant))
    assert len(blocks) == linkpred.MIN_BLOCKS and blocks[0].start == 0 and blocks[-1].stop == 40
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    _assert_matches(indices, (40, 30), variant)
    empty = torch.empty(2, 0, dtype=torch.int64)
    nothing = list(ch_score_blocks(empty, (8, 4), variant))
    assert [(b.start, b.stop, b.sparse[0].numel()) for b in nothing] == [(0, 2, 0), (2, 4, 0), (4, 6, 0), (6, 8, 0)]


ROUTES = {"gemm": linkpred._Route(gemm=True, wedges=False, dense_a_g1_a=False, sparse=True),
          "pairs": linkpred._Route(gemm=False, wedges=False, dense_a_g1_a=False, sparse=True),
          "wedges": linkpred._Route(gemm=False, wedges=True, dense_a_g1_a=False, sparse=True),
          "wedges, dense AtG1A": linkpred._Route(gemm=False, wedges=True, dense_a_g1_a=True, sparse=False),
          "gemm only": linkpred._Route(gemm=True, wedges=False, dense_a_g1_a=False, sparse=False)}


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(1, 9), density=st.floats(0.05, 0.9), seed=st.integers(0, 10**6),
       variant=st.sampled_from(["CH3-L3n", "CH2-L3n"]), route=st.sampled_from(sorted(ROUTES)),
       fill=st.sampled_from([0.0, 0.02, float("inf")]), block_rows=st.sampled_from([None, 1, 3]))
def test_every_node_route_matches_brute_force(m, n, density, seed, variant, route, fill, block_rows):
    # The wedge route splits E_U by the number of shared inputs (E_U = C_U ∘ G1 + Δ); pairs sharing 2, 3, ...
    # inputs appear at these densities, so a wrong Δ or c from the wedge matches fails here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linkpred, "_route", lambda *args: ROUTES[route])
        patch.setattr(linkpred, "DENSE_FILL", fill)
        patch.setattr(linkpred, "PRODUCT_FILL", fill)
        _assert_matches(_random_layer(m, n, density, seed), (m, n), variant, block_rows=block_rows)


def test_wedges_count_shared_inputs():
    from sparsenet.evolution.graph import LayerGraph
    indices = _random_layer(30, 12, 0.4, 3)
    dense = torch.zeros(30, 12)
    dense[indices[0], indices[1]] = 1
    shared = (dense @ dense.t()).long()
    u, j, c = LayerGraph(indices, (30, 12)).wedges.shared_pairs(4, 19)
    got = {(a + 4, b): s for a, b, s in zip(u.tolist(), j.tolist(), c.tolist())}
    expected = {(a, b): int(shared[a, b]) for a in range(4, 19) for b in range(30) if a != b and shared[a, b] >= 2}
    assert got == expected and max(expected.values()) >= 4


@pytest.mark.parametrize("m, n, density, seed", [(30, 12, 0.4, 3), (7, 40, 0.2, 4), (50, 50, 0.05, 5)])
def test_pair_lists_are_the_co_neighbour_counts_and_within_their_bound(m, n, density, seed):
    from sparsenet.evolution.graph import LayerGraph
    indices = _random_layer(m, n, density, seed)
    dense = torch.zeros(m, n, dtype=torch.float64)
    dense[indices[0], indices[1]] = 1
    graph = LayerGraph(indices, (m, n))
    for pairs, reference in ((graph.co_u, dense @ dense.t()), (graph.co_v, dense.t() @ dense)):
        first, second = reference.nonzero(as_tuple=True)
        assert torch.equal(pairs.keys, first * reference.shape[0] + second)
        assert torch.equal(pairs.count, reference[first, second].long())
        assert torch.equal(pairs.ptr[1:] - pairs.ptr[:-1], torch.bincount(first, minlength=reference.shape[0]))
    bound_u, bound_v = graph.pair_bounds()
    assert graph.co_u.keys.numel() <= bound_u and graph.co_v.keys.numel() <= bound_v


def test_hub_layer_pair_lists_follow_pairs_not_paths():
    # CSTI at width copies one block of correlated links into every tile: 6k neurons of a 100k² layer linked in
    # cliques of hubs, 1.3e9 paths of two links for 3.9e7 pairs. Pair lists built by unique() over those paths
    # took 23 GiB; they must cost pairs, and be priced below the paths (scaled: 10 copies of a complete 40 x 40 block).
    block = torch.cartesian_prod(torch.arange(40), torch.arange(40))
    copies = torch.cat([block + torch.tensor([100 * t, 50 * t]) for t in range(10)]).t()
    indices = copies[:, torch.argsort(copies[0] * 1000 + copies[1])]
    graph = linkpred.LayerGraph(indices, (1000, 500))
    paths = float((graph.degree_u.double() ** 2).sum())                 # per side: 400 nodes x 40² paths
    assert graph.co_u.keys.numel() == graph.co_v.keys.numel() == 10 * 40 * 40
    assert graph.pair_bounds() == (400 * 400, 400 * 400) and paths == 400 * 40 * 40
    assert not linkpred._route(graph, "CH2-L3n", int(sum(linkpred._pair_list_bytes(graph)))).wedges


def test_wide_input_layer_takes_the_wedge_route_without_output_pairs(monkeypatch):
    # 784 inputs feeding 333k neurons at 10 links per neuron: C_U's pair list is Σ_b deg(b)² ≈ 3.6e9 entries.
    # Scaled down: 12 inputs of degree ~500 feeding 3000 outputs, with GEMM_WEIGHTS lowered to make it "large".
    indices = _random_layer(3000, 12, 0.15, 4)
    expected = _as_dict(ch_scores(indices, (3000, 12), "CH2-L3n"))
    graph = linkpred.LayerGraph(indices, (3000, 12))
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", 1000)
    budget = 4 * 8 * 12 * 12  # Aᵀ G₁ A (12 x 12, float64) takes a quarter; C_U's pairs (~2.4M) far more
    assert sum(linkpred._pair_list_bytes(graph)) > 1000 * budget
    assert linkpred._route(graph, "CH2-L3n", budget) == ROUTES["wedges, dense AtG1A"]
    built = []
    original = linkpred.LayerGraph.co_u.fget
    monkeypatch.setattr(linkpred.LayerGraph, "co_u", property(lambda self: built.append(1) or original(self)))
    got = _block_scores(ch_score_blocks(indices, (3000, 12), "CH2-L3n", memory_budget=budget, dtype=torch.float64))
    assert not built and set(got) == set(expected)
    assert all(abs(got[k] - v) <= 1e-9 * v for k, v in expected.items())


def test_route_keeps_dense_products_for_the_papers_layers():
    graph = linkpred.LayerGraph(_random_layer(1568, 784, 0.01, 5), (1568, 784))
    assert linkpred._route(graph, "CH3-L3n", linkpred.DEFAULT_BUDGET) == ROUTES["gemm"]
    assert linkpred._route(graph, "CH3-L3p", linkpred.DEFAULT_BUDGET) == ROUTES["pairs"]


def test_few_inputs_and_many_outputs_take_no_dense_products(monkeypatch):
    # 64 digits pixels feeding 200,000 neurons have 1.3e7 weights, yet dense products would form C_U blocks of
    # 200,000 rows each: 4e10 scores in all (a 571 s update). Scaled down: 12 inputs, 3000 outputs, and
    # GEMM_WEIGHTS between out x in and out².
    indices = _random_layer(3000, 12, 0.15, 4)
    graph = linkpred.LayerGraph(indices, (3000, 12))
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", 3000 * 12 * 2)
    for variant in ("CH3-L3n", "CH2-L3n"):
        assert not linkpred._route(graph, variant, linkpred.DEFAULT_BUDGET).gemm
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", 3000 * 3000)
    assert linkpred._route(graph, "CH2-L3n", linkpred.DEFAULT_BUDGET).gemm


@pytest.mark.parametrize("variant", ["CH3-L3n", "CH2-L3n"])
def test_large_layer_never_falls_back_to_dense_products(monkeypatch, variant):
    # The one law: above GEMM_WEIGHTS a dense product's blocks grow with out x in (a 333k² layer asked for a
    # 333k x 83k tensor); with neither pair lists nor wedges within budget, the cheaper sparse route is taken.
    indices = _random_layer(200, 150, 0.05, 6)
    graph = linkpred.LayerGraph(indices, (200, 150))
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", 1000)
    route = linkpred._route(graph, variant, 64)
    assert not route.gemm and route.sparse
    expected = _as_dict(ch_scores(indices, (200, 150), variant))
    got = _block_scores(ch_score_blocks(indices, (200, 150), variant, memory_budget=64, dtype=torch.float64))
    assert set(got) == set(expected) and all(abs(got[k] - v) <= 1e-9 * v for k, v in expected.items())
