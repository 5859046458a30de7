"""The methods as the authors run them: state kept across an update, SET's sign-split removal, MEST's score
and elastic turnover, CHTss's exponent and ζ schedule (method.md §2-§5; issue "methods as the authors run them")."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sparsenet.evolution import DensitySchedule, Schedule, TopologyEngine, make_method, method_schedule
from sparsenet.evolution.selection import keep_per_sign
from sparsenet.sparse import linear_keys, link_count
from tests.evolution.reference import inclusion_probabilities
from tests.evolution.test_engine import TinyMLP, _data, _train_step


def _snapshot(layer, optimizer) -> dict:
    """``{key: (value, state values...)}`` of every link of ``layer``."""
    keys = linear_keys(layer.indices, layer.in_features).tolist()
    state = optimizer.state.get(layer.values, {})
    tensors = [layer.values.detach()] + [state[k] for k in sorted(state) if torch.is_tensor(state[k])
                                          and state[k].dim() == 1]
    return {key: tuple(float(t[i]) for t in tensors) for i, key in enumerate(keys)}


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(["set", "rigl", "mest", "cht", "chts", "chtss"]), adam=st.booleans(),
       seed=st.integers(0, 1000))
def test_links_present_before_and_after_an_update_keep_value_and_state(name, adam, seed):
    method = make_method(name, percolation=False) if name in ("cht", "chts", "chtss") else make_method(name)
    model = TinyMLP(density=DensitySchedule(0.3, method.density_schedule).start(), seed=seed)
    optimizer = (torch.optim.Adam(model.parameters(), lr=1e-2) if adam
                 else torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=2, total_steps=40, zeta=0.5),
                            density=0.3, seed=seed)
    x, y = _data(seed=seed)
    regained = 0
    for step in range(1, 9):
        _train_step(model, optimizer, x, y)
        before = [_snapshot(layer, optimizer) for layer in model.hidden]
        stats = engine.step(step)
        if stats is None:
            continue
        for layer, old in zip(model.hidden, before):
            new = _snapshot(layer, optimizer)
            for key, entry in new.items():
                if key in old:
                    assert entry == old[key]  # value and every moment, bit for bit
                else:
                    assert all(v == 0.0 for v in entry)  # a new link: zero value, zero state
        regained += sum(s["overlap"] * s["regrown"] for s in stats["layers"])
    if name in ("cht", "chts"):
        assert regained > 0  # some links were removed and regrown in one update: the case that matters


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([-3.0, -2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]), max_size=30),
       zeta=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9]), seed=st.integers(0, 100))
def test_sign_split_removal_drops_the_zeta_share_of_each_sign_closest_to_zero(values, zeta, seed):
    w = torch.tensor(values, dtype=torch.float64)
    keep = keep_per_sign(w, zeta, torch.Generator().manual_seed(seed))
    for side in (w > 0, w < 0):
        n = int(side.sum())
        removed = side & ~keep
        assert int(removed.sum()) == int(zeta * n)  # ⌊ζ·n⌋ of this sign
        if removed.any() and (side & keep).any():  # the removed ones are the closest to zero
            assert float(w[removed].abs().max()) <= float(w[side & keep].abs().min())
    assert not keep[w == 0].any()  # exact zeros always go


def test_set_and_cht_use_the_sign_split_rule_and_chtss_the_released_schedules():
    assert make_method("set").removal == "wm_signed" and make_method("cht").removal == "wm_signed"
    assert make_method("cht").regrowth == "ch3_l3p" and make_method("chts").regrowth == "ch3_l3p_soft"
    assert make_method("chtss").regrowth == "ch2_l3n_soft" and make_method("rigl").regrowth == "gradient"
    cht = make_method("cht")
    assert cht.zeta_decay == "constant" and method_schedule(cht, 10, 1000).end == 1000  # ICLR CHT: to the end
    chtss = make_method("chtss")
    schedule = method_schedule(chtss, 10, 1000, 0.3)
    assert chtss.zeta_decay == "cosine" and schedule.end == 750
    assert schedule.exponent_at(0) == 1.0 and schedule.exponent_at(375) == 5.0 and schedule.exponent_at(750) == 9.0
    assert schedule.zeta_at(375) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="sign-split"):
        make_method("set", removal="wm_signed_soft")


def test_set_update_removes_the_sign_split_counts():
    model = TinyMLP(density=0.3, seed=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    engine = TopologyEngine(model, optimizer, make_method("set"), Schedule(update_interval=1, total_steps=10, zeta=0.3))
    _train_step(model, optimizer, *_data())
    signs = [(int((l.values > 0).sum()), int((l.values < 0).sum())) for l in model.hidden]
    stats = engine.step(1)
    for (positive, negative), layer_stats in zip(signs, stats["layers"]):
        assert layer_stats["removed"] == int(0.3 * positive) + int(0.3 * negative)


@pytest.mark.parametrize("lam", [0.01, 1.0])
def test_mest_score_uses_its_lambda(lam):
    model = TinyMLP(sizes=(20, 30), density=0.3)
    layer = model.hidden[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    method = make_method("mest", mest_lambda=lam)
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=1, total_steps=8), density=0.25)
    _train_step(model, optimizer, *_data())
    with torch.no_grad():
        layer.values.grad.mul_(100.0)  # make the gradient term decide for the larger λ
    score = layer.values.detach().abs() + lam * layer.values.grad.abs()
    kept = engine._keep_masks(1, {l: engine._target_nnz(l, 1) for l in engine.layers})[layer]
    assert 0 < int(kept.sum()) < layer.nnz
    assert float(score[kept].min()) >= float(score[~kept].max())


def test_mest_elastic_turnover_prunes_the_excess_and_regrows_the_elastic_share():
    """EM&S: start at D + 5% of the layer; each update prunes to D (by |w| + λ|g|) and regrows at random to
    D + 5% while progress < 0.6, then D + 2.5%, and nothing at the last update."""
    final, shape = 0.1, (30, 20)
    model = TinyMLP(sizes=(20, 30), density=DensitySchedule(final, "elastic").start())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    schedule = Schedule(update_interval=1, total_steps=11, t_end=11)  # updates 1..10, the last at 10
    engine = TopologyEngine(model, optimizer, make_method("mest"), schedule, density=final)
    layer, x, y = model.hidden[0], *_data()
    d_nnz = link_count(*shape, final)
    for step in range(1, 11):
        nnz = layer.nnz
        _train_step(model, optimizer, x, y)
        stats = engine.step(step)["layers"][0]
        progress = step / schedule.last_update
        target = final if progress >= 1 else final + (0.05 if progress < 0.6 else 0.025)
        assert stats["removed"] == nnz - d_nnz
        assert stats["regrown"] == link_count(*shape, target) - d_nnz and layer.nnz == link_count(*shape, target)
    assert layer.nnz == d_nnz


class _OneLayer(torch.nn.Module):
    def __init__(self, out_features, in_features, density, seed):
        super().__init__()
        from sparsenet.sparse import SparseLinear
        self.layer = SparseLinear(in_features, out_features, density=density, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():  # distinct magnitudes: the removal has no ties
            self.layer.values.copy_(torch.randn(self.layer.nnz, generator=torch.Generator().manual_seed(seed),
                                                dtype=torch.float64))


@pytest.mark.parametrize("regrowth, variant", [("ch3_l3p", "CH3-L3p"), ("ch3_l3n", "CH3-L3n"),
                                               ("ch2_l3n", "CH2-L3n")])
@pytest.mark.parametrize("fill", [0.0, float("inf")])  # force dense, then sparse score blocks
def test_hard_ch_regrowth_takes_exactly_the_top_scores_of_its_variant(regrowth, variant, fill, monkeypatch):
    """After one update, the regrown links are the top-k absent links of the method's CH variant computed by
    brute-force path enumeration on the topology left by the removal (compared as score multisets, so ties
    may fall either way); a wrong variant or a block losing its row offset picks other scores."""
    import sparsenet.evolution.linkpred as linkpred
    from tests.evolution.reference import brute_force_ch
    monkeypatch.setattr(linkpred, "DENSE_FILL", fill)
    monkeypatch.setattr(linkpred, "PRODUCT_FILL", fill)
    seed = 0
    model = _OneLayer(12, 9, 0.3, seed)
    layer = model.layer
    method = make_method("set", regrowth=regrowth, removal="wm")
    engine = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.0), method,
                            Schedule(update_interval=1, total_steps=10, zeta=0.4), seed=seed)
    old_keys = linear_keys(layer.indices, 9)
    magnitude = layer.values.detach().abs()
    n = old_keys.numel()
    kept = old_keys[magnitude.argsort(descending=True)[:n - int(0.4 * n)]].sort().values
    engine.step(1)
    new_keys = linear_keys(layer.indices, 9)
    regrown = new_keys[~torch.isin(new_keys, kept)]
    scores = brute_force_ch(torch.stack((kept // 9, kept % 9)), (12, 9), variant)
    assert len(scores) > regrown.numel()  # enough positive-scored candidates: no random fill
    top = sorted(scores.values(), reverse=True)[:regrown.numel()]
    got = sorted((scores.get((int(k) // 9, int(k) % 9), 0.0) for k in regrown), reverse=True)
    assert got == pytest.approx(top, rel=1e-9)
    assert regrown.numel() == n - kept.numel()


def test_soft_removal_keeps_links_with_the_scheduled_exponents_law():
    """CHTs' soft removal at step 50 of a 100-step window (exponent 1 → 3, so T = 2) keeps each of 6 links
    with the exact without-replacement inclusion probability of weights |w|^2 (over 3,000 seeded draws);
    the exponent-1 law is visibly different, so an ignored schedule fails."""
    from sparsenet.sparse import SparseLinear

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = SparseLinear(3, 2, density=1.0, dtype=torch.float64)

    model = One()
    values = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0, 1.2], dtype=torch.float64)
    with torch.no_grad():
        model.layer.values.copy_(values)
    engine = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.0), make_method("chts", percolation=False),
                            Schedule(update_interval=1, total_steps=100, zeta=0.5), seed=0)
    draws = 3000
    counts = torch.zeros(6, dtype=torch.float64)
    for _ in range(draws):
        counts += engine._keep_masks(50, {model.layer: 6})[model.layer].double()
    frequency = (counts / draws).tolist()
    expected = inclusion_probabilities((values ** 2).tolist(), 3)
    wrong = inclusion_probabilities(values.tolist(), 3)
    assert max(abs(f - e) for f, e in zip(frequency, expected)) < 0.03  # ~4 standard errors
    assert max(abs(w - e) for w, e in zip(wrong, expected)) > 0.08  # the test tells the two laws apart


def test_soft_ch_regrowth_samples_absent_links_with_probability_proportional_to_their_score():
    """The engine's soft CH3-L3p regrowth (SET's hard |w| removal, so the kept links are fixed): over 800
    updates from the same state, each absent link is regrown with the exact without-replacement inclusion
    probability of its brute-force CH score; a hard top-k would give frequencies of 0 or 1."""
    import copy
    from tests.evolution.reference import brute_force_ch
    model = _OneLayer(4, 4, 0.5, 3)
    layer = model.layer
    method = make_method("set", regrowth="ch3_l3p_soft", removal="wm")
    engine = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.0), method,
                            Schedule(update_interval=1, total_steps=10, zeta=0.25), seed=0)
    old = linear_keys(layer.indices, 4)
    kept = old[layer.values.detach().abs().argsort(descending=True)[:old.numel() - int(0.25 * old.numel())]].sort().values
    scores = brute_force_ch(torch.stack((kept // 4, kept % 4)), (4, 4), "CH3-L3p")
    candidates = sorted(scores)
    k = old.numel() - kept.numel()
    assert len(candidates) > k + 1  # a real choice among positive scores
    expected = inclusion_probabilities([scores[c] for c in candidates], k)
    counts = dict.fromkeys(candidates, 0)
    draws = 800
    for draw in range(draws):
        trial_model, trial_engine = copy.deepcopy((model, engine))  # one copy: the engine holds the layer
        trial_engine.generator.manual_seed(draw)
        trial_engine.step(1)
        new = linear_keys(trial_model.layer.indices, 4)
        for key in new[~torch.isin(new, kept)].tolist():
            counts[(key // 4, key % 4)] += 1
    frequency = [counts[c] / draws for c in candidates]
    assert max(abs(f - e) for f, e in zip(frequency, expected)) < 0.06  # ~3.5 standard errors
