"""TopologyEngine: every method on an MLP, optimizer-state alignment against dense+mask, invariants."""
import copy

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn import functional as F

from sparsenet.evolution import Chain, DensitySchedule, Schedule, TopologyEngine, make_method, select_absent
from sparsenet.evolution.regrowth import gradient_blocks
from sparsenet.sparse import SparseLinear, linear_keys, link_count
from sparsenet.topology import init_sparse_model
from tests.devices import DEVICES


class TinyMLP(nn.Module):
    def __init__(self, sizes=(20, 30, 30), classes=5, density=0.2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.hidden = nn.ModuleList(SparseLinear(a, b, density=density, generator=g, dtype=torch.float64)
                                    for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(sizes[-1], classes).double()

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)

    def percolation_relations(self):
        return [Chain(tuple(self.hidden))]


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 20, generator=g, dtype=torch.float64), torch.randint(5, (n,), generator=g)


def _train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _check_invariants(model, optimizer):
    for layer in model.hidden:
        keys = linear_keys(layer.indices, layer.in_features)
        assert bool((keys[1:] > keys[:-1]).all())
        assert layer.values.shape == (layer.nnz,)
        for value in optimizer.state.get(layer.values, {}).values():
            if torch.is_tensor(value) and value.dim() > 0:
                assert value.shape == (layer.nnz,)


@pytest.mark.parametrize("name", ["static", "set", "rigl", "mest", "cht", "chts", "chtss"])
def test_every_method_updates_an_mlp(name):
    method = make_method(name)
    model = TinyMLP()
    start = DensitySchedule(0.2, method.density_schedule).start()  # density-decay methods start denser
    init_sparse_model(model, "er", start, weights=method.weights, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=5, total_steps=100), density=0.2)
    x, y = _data()
    nnz = [layer.nnz for layer in model.hidden]
    updates = []
    for step in range(1, 21):
        _train_step(model, optimizer, x, y)
        stats = engine.step(step)
        _check_invariants(model, optimizer)
        if stats:
            updates.append(stats)
    if name == "static":
        assert updates == [] and [layer.nnz for layer in model.hidden] == nnz
        return
    assert len(updates) == 4 or (method.early_stop and updates[-1]["stopped"])
    if method.density_schedule == "constant":
        assert [layer.nnz for layer in model.hidden] == nnz
        assert all(u["regrown"] == u["removed"] for u in updates)
    assert all(u["removed"] > 0 for u in updates)
    if method.percolation:
        assert 0 < updates[-1]["anp"] <= 1


def _dense_reference_run(method_name, optimizer_factory, steps=50, interval=10, device="cpu"):
    """Sparse run vs dense+mask run fed the sparse run's masks; returns both loss curves."""
    torch.manual_seed(0)
    sparse = TinyMLP().to(device)
    dense_weights = [nn.Parameter(layer.to_dense().clone()) for layer in sparse.hidden]
    dense_out = nn.Linear(30, 5).double().to(device)
    dense_out.load_state_dict(sparse.out.state_dict())
    dense_biases = [nn.Parameter(layer.bias.detach().clone()) for layer in sparse.hidden]
    sparse_opt = optimizer_factory(sparse.parameters())
    dense_params = [p for pair in zip(dense_weights, dense_biases) for p in pair] + list(dense_out.parameters())
    # parameter order must match for identical hyper-parameters; momentum state is per parameter anyway
    dense_opt = optimizer_factory(dense_params)
    engine = TopologyEngine(sparse, sparse_opt, make_method(method_name),
                            Schedule(update_interval=interval, total_steps=1000), seed=3)
    x, y = (t.to(device) for t in _data())
    sparse_losses, dense_losses = [], []
    for step in range(1, steps + 1):
        sparse_losses.append(_train_step(sparse, sparse_opt, x, y))
        dense_opt.zero_grad()
        h = x
        for w, b in zip(dense_weights, dense_biases):
            h = torch.relu(h @ w.t() + b)
        loss = F.cross_entropy(dense_out(h), y)
        loss.backward()
        for w, layer in zip(dense_weights, sparse.hidden):  # the peers' gradient hook: grad *= mask
            mask = torch.zeros_like(w, dtype=torch.bool)
            mask[layer.indices[0], layer.indices[1]] = True
            w.grad *= mask
        dense_opt.step()
        dense_losses.append(loss.item())
        if engine.step(step):
            with torch.no_grad():
                for w, layer in zip(dense_weights, sparse.hidden):  # re-mask weights and moments
                    mask = torch.zeros_like(w, dtype=torch.bool)
                    mask[layer.indices[0], layer.indices[1]] = True
                    fresh = layer.values == 0  # regrown links (kept ones are non-zero almost surely)
                    mask[layer.indices[0, fresh], layer.indices[1, fresh]] = False
                    w.mul_(mask)
                    for value in dense_opt.state[w].values():
                        if torch.is_tensor(value) and value.shape == w.shape:
                            value.mul_(mask)
    return sparse_losses, dense_losses


@pytest.mark.parametrize("factory", [
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
    lambda p: torch.optim.Adam(p, lr=0.01),
], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("device", DEVICES)
def test_optimizer_state_stays_aligned_with_links(factory, device):
    sparse_losses, dense_losses = _dense_reference_run("set", factory, device=device)
    assert max(abs(a - b) for a, b in zip(sparse_losses, dense_losses)) < 1e-5


def test_same_seed_same_topology_and_losses():
    runs = []
    for _ in range(2):
        model = TinyMLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        engine = TopologyEngine(model, optimizer, make_method("chts"), Schedule(update_interval=3, total_steps=60),
                                seed=7)
        x, y = _data()
        losses = []
        for step in range(1, 16):
            losses.append(_train_step(model, optimizer, x, y))
            engine.step(step)
        runs.append((losses, [layer.indices.clone() for layer in model.hidden]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


@pytest.mark.parametrize("device", DEVICES)
def test_state_dict_resumes_identically(device):
    def make():
        model = TinyMLP().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, optimizer, TopologyEngine(model, optimizer, make_method("chts"),
                                                Schedule(update_interval=2, total_steps=40), seed=1)
    x, y = (t.to(device) for t in _data())
    model, optimizer, engine = make()
    for step in range(1, 7):
        _train_step(model, optimizer, x, y)
        engine.step(step)
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), engine.state_dict()))
    for step in range(7, 13):
        _train_step(model, optimizer, x, y)
        engine.step(step)
    expected = [layer.indices.clone() for layer in model.hidden]
    model2, optimizer2, engine2 = make()
    model2.load_state_dict(saved[0])
    optimizer2.load_state_dict(saved[1])
    engine2.load_state_dict(saved[2])
    for step in range(7, 13):
        _train_step(model2, optimizer2, x, y)
        engine2.step(step)
    assert all(torch.equal(a, layer.indices) for a, layer in zip(expected, model2.hidden))


def test_cht_early_stop_when_regrowth_returns_the_removed_links():
    model = TinyMLP(sizes=(10, 10, 10), density=0.99)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    engine = TopologyEngine(model, optimizer, make_method("cht"), Schedule(update_interval=1, total_steps=50))
    x, y = torch.randn(8, 10, dtype=torch.float64), torch.randint(5, (8,))
    model.out = nn.Linear(10, 5).double()
    _train_step(model, optimizer, x, y)
    stats = engine.step(1)
    assert stats["overlap"] > 0.9 and stats["stopped"]
    assert engine.step(2) is None


def test_historical_weights_restore_old_values():
    model = TinyMLP(sizes=(6, 6), density=0.9)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    method = make_method("set", historical_weights=True)
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=1, total_steps=100, zeta=0.5))
    layer = model.hidden[0]
    seen = {k: v for k, v in zip(linear_keys(layer.indices, 6).tolist(), layer.values.tolist())}
    restored = 0
    for step in range(1, 6):
        engine.step(step)
        for key, value in zip(linear_keys(layer.indices, 6).tolist(), layer.values.tolist()):
            if key in seen and value != 0.0:
                assert value == seen[key]  # lr 0: a link's value is its first one, whenever it comes back
                restored += 1
    assert restored > 0


def test_gradient_regrowth_needs_a_backward_pass():
    model = TinyMLP()
    engine = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.1), make_method("rigl"),
                            Schedule(update_interval=1, total_steps=10))
    with pytest.raises(RuntimeError, match="gradient regrowth needs a forward and backward pass"):
        engine.step(1)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_regrowth_takes_the_largest_absent_gradients(device):
    layer = SparseLinear(20, 30, density=0.2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    layer.to(device)
    x, dy = torch.randn(16, 20, dtype=torch.float64), torch.randn(16, 30, dtype=torch.float64)
    present = linear_keys(layer.indices, 20)
    chosen = select_absent(gradient_blocks(layer, x.to(device), dy.to(device), memory_budget=8 * 20 * 7), 25, False,
                           present, 600)
    dense = (dy.t() @ x).abs().flatten()
    dense[present.cpu()] = -1.0
    assert chosen.device.type == torch.device(device).type
    assert torch.equal(chosen.cpu(), torch.topk(dense, 25).indices.sort().values)


def _hashes_on(name: str, device: str) -> tuple[list[str], list[int]]:
    """Topology hashes of 4 updates of ``name`` on a TinyMLP on ``device``, and the final layer sizes."""
    method = make_method(name)
    model = TinyMLP()
    init_sparse_model(model, "er", DensitySchedule(0.2, method.density_schedule).start(), weights=method.weights,
                      generator=torch.Generator().manual_seed(0))
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=2, total_steps=12, t_end=9),
                            density=0.2)
    x, y = (t.to(device) for t in _data())
    hashes = []
    for step in range(1, 9):
        _train_step(model, optimizer, x, y)
        stats = engine.step(step)
        if stats:
            hashes.append(stats["topology_hash"])
    return hashes, [layer.nnz for layer in model.hidden]


@pytest.mark.parametrize("name", ["rigl", "chtss"])
@pytest.mark.parametrize("device", DEVICES)
def test_rigl_and_chtss_draw_the_cpu_topology_on_every_device(name, device):
    hashes, sizes = _hashes_on(name, device)
    assert (hashes, sizes) == _hashes_on(name, "cpu")
    assert len(set(hashes)) == 4  # every update changed the links
    if name == "chtss":  # the sigmoid density decay ends at the target
        assert sizes == [link_count(30, 20, 0.2), link_count(30, 30, 0.2)]


class _FactoredState(torch.optim.SGD):
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["row_factor"] = torch.zeros(3, 3)


def test_unsupported_optimizer_state_is_named():
    model = TinyMLP()
    optimizer = _FactoredState(model.parameters(), lr=0.1)
    engine = TopologyEngine(model, optimizer, make_method("set"), Schedule(update_interval=1, total_steps=10))
    _train_step(model, optimizer, *_data())
    with pytest.raises(TypeError, match="_FactoredState keeps state 'row_factor' of shape \\(3, 3\\)"):
        engine.step(1)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6), method=st.sampled_from(["set", "chts", "cht", "mest"]),
       zeta=st.floats(0.05, 0.9), device=st.sampled_from(DEVICES))
def test_invariants_over_many_random_updates(seed, method, zeta, device):
    model = TinyMLP(sizes=(8, 9, 7), density=0.3, seed=seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    schedule = Schedule(update_interval=1, total_steps=10_000, zeta=zeta)
    engine = TopologyEngine(model, optimizer, make_method(method, early_stop=None) if method == "cht"
                            else make_method(method), schedule, seed=seed, density=0.3)
    x, y = torch.randn(4, 8, dtype=torch.float64).to(device), torch.randint(5, (4,)).to(device)
    targets = [link_count(l.out_features, l.in_features, 0.3) for l in model.hidden]
    for step in range(1, 126):  # 8 examples x 125 updates = 1,000 updates
        if step % 25 == 1:
            _train_step(model, optimizer, x, y)
        engine.step(step)
        _check_invariants(model, optimizer)
        if method != "mest":
            assert [l.nnz for l in model.hidden] == targets


@pytest.mark.parametrize("name,start", [("mest", 0.25), ("chtss", 0.5)])
def test_density_schedules_end_exactly_at_the_target(name, start):
    model = TinyMLP(density=start)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = Schedule(update_interval=2, total_steps=40, zeta_decay="cosine")  # updates at 2, 4, ..., 28
    engine = TopologyEngine(model, optimizer, make_method(name), schedule, density=0.2)
    x, y = _data()
    seen = []
    for step in range(1, 41):
        _train_step(model, optimizer, x, y)
        if engine.step(step):
            seen.append(sum(layer.nnz for layer in model.hidden))
    targets = [link_count(l.out_features, l.in_features, 0.2) for l in model.hidden]
    assert [layer.nnz for layer in model.hidden] == targets
    assert seen == sorted(seen, reverse=True) and seen[0] > sum(targets)


def test_mest_decay_prunes_by_its_own_score():
    model = TinyMLP(sizes=(20, 30), density=0.3)  # elastic starts at final + 5%
    layer = model.hidden[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    engine = TopologyEngine(model, optimizer, make_method("mest"), Schedule(update_interval=1, total_steps=8, zeta=0.0),
                            density=0.25)
    _train_step(model, optimizer, *_data())
    score = (layer.values.detach().abs() + 0.01 * layer.values.grad.abs()).clone()  # the authors' λ
    keys = linear_keys(layer.indices, 20)
    engine.step(7)  # the last update: pruned straight to the target, zeta 0 removes nothing more
    kept = torch.isin(keys, linear_keys(layer.indices, 20))
    assert int(kept.sum()) == layer.nnz == link_count(30, 20, 0.25)
    assert float(score[kept].min()) >= float(score[~kept].max())


def test_early_stop_waits_for_every_layer_and_flagged_layers_keep_evolving():
    model = TinyMLP(sizes=(10, 10, 40), density=0.99)
    with torch.no_grad():  # the second layer sparse enough that CH3-L3p regrowth finds other links
        model.hidden[1].set_topology(SparseLinear(10, 40, density=0.2, generator=torch.Generator().manual_seed(1),
                                                  dtype=torch.float64).indices)
        model.hidden[1].values.normal_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    engine = TopologyEngine(model, optimizer, make_method("cht", percolation=False),
                            Schedule(update_interval=1, total_steps=50))
    x, y = torch.randn(8, 10, dtype=torch.float64), torch.randint(5, (8,))
    _train_step(model, optimizer, x, y)
    stats = engine.step(1)
    assert stats["layers"][0]["overlap"] > 0.9 and stats["layers"][1]["overlap"] < 0.9
    assert engine.flagged == {model.hidden[0]} and not stats["stopped"]
    _train_step(model, optimizer, x, y)
    stats = engine.step(2)  # the flagged layer is still updated (its links removed and regrown)
    assert stats["layers"][0]["removed"] > 0 and stats["layers"][1]["removed"] > 0
    assert model.hidden[0] in engine.flagged and not stats["stopped"]  # the flag is sticky
    engine.flagged.add(model.hidden[1])  # once every layer has passed, all evolution stops
    _train_step(model, optimizer, x, y)
    assert engine.step(3)["stopped"] and engine.step(4) is None
