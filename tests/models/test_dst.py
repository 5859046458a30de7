"""The DST object in a plain loop (README's example runs as printed), relations found from module names,
exact resume, and refusals."""
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import sparsenet
from sparsenet import DST, SparseLinear, sparsify, start_sparsity
from sparsenet.evolution.percolation import Chain
from sparsenet.relations import find_relations

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Use it on your own model")[1]
    return section.split("```python\n")[1].split("```")[0]


def test_readme_plain_loop_example_runs_and_learns(capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 15
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model, x, y, dst = namespace["model"], namespace["x"], namespace["y"], namespace["dst"]
    hidden = [m for m in model if isinstance(m, SparseLinear)]
    assert [m.nnz for m in hidden] == [round(0.1 * 256 * 64), round(0.1 * 256 * 256)]
    assert dst.steps == 600 and dst.engine.relations  # found the Sequential chain
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9, accuracy  # digits: a dense model of this size reaches ~0.99 on its training set
    assert "total" in capsys.readouterr().out


class Attention(nn.Module):
    def __init__(self, d, kv):
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, kv)
        self.v_proj, self.o_proj = nn.Linear(d, kv), nn.Linear(d, d)


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = nn.Linear(d, 2 * d), nn.Linear(d, 2 * d), nn.Linear(2 * d, d)


class TinyLlama(nn.Module):
    def __init__(self, d=8, kv=8, layers=2):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleDict({"self_attn": Attention(d, kv), "mlp": Mlp(d)})
                                    for _ in range(layers))


def _described(model, relations):
    names = {m: n for n, m in model.named_modules()}
    return [(type(r).__name__, tuple(names[l] for l in (r.layers if isinstance(r, Chain) else (r.first, r.second))))
            for r in relations]


def test_llama_names_give_attention_and_swiglu_relations():
    model = TinyLlama()
    sparsify(model, 0.5, generator=torch.Generator().manual_seed(0))
    found = _described(model, find_relations(model))
    for i in range(2):
        p = f"layers.{i}."
        assert ("SamePosition", (p + "self_attn.q_proj", p + "self_attn.k_proj")) in found
        assert ("Chain", (p + "self_attn.v_proj", p + "self_attn.o_proj")) in found
        assert ("SamePosition", (p + "mlp.gate_proj", p + "mlp.up_proj")) in found
        assert ("Chain", (p + "mlp.gate_proj", p + "mlp.down_proj")) in found
        assert ("Chain", (p + "mlp.up_proj", p + "mlp.down_proj")) in found
    assert len(found) == 10


def test_grouped_query_shapes_that_do_not_connect_are_skipped():
    model = TinyLlama(d=8, kv=4, layers=1)
    sparsify(model, 0.5, include="*self_attn*")
    assert find_relations(model) == []  # q (8 outputs) vs k (4); v (4 outputs) vs o (8 inputs)


def test_sequential_chains_stop_at_modules_with_parameters():
    a, b, c, d = SparseLinear(4, 6, density=0.5), SparseLinear(6, 6, density=0.5), SparseLinear(6, 5, density=0.5), \
        SparseLinear(5, 3, density=0.5)
    model = nn.Sequential(a, nn.ReLU(), b, nn.LayerNorm(6), c, nn.Dropout(), d)
    relations = find_relations(model)
    assert [r.layers for r in relations] == [(a, b), (c, d)]


def test_a_percolating_method_warns_when_no_relation_is_found_and_others_do_not():
    model = nn.ModuleDict({"encoder": nn.Linear(6, 6)})
    sparsify(model, 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="no percolation relations found"):
        DST(model, optimizer, method="chts", total_steps=10, update_interval=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DST(model, optimizer, method="set", total_steps=10, update_interval=5)
        DST(model, optimizer, method="chts", total_steps=10, update_interval=5, percolation=False)


def _run(steps, resume_at=None, method="rigl"):
    """Train a small sparsified Sequential on fixed data; with ``resume_at``, save everything at that step
    and continue in fresh objects. Returns the final (indices, values) of every sparse layer and the updates."""
    def build():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
        sparsify(model, start_sparsity(method, 0.8), exclude="4", generator=torch.Generator().manual_seed(1))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        return model, optimizer, DST(model, optimizer, method=method, total_steps=steps, update_interval=10,
                                     sparsity=0.8, seed=3)
    data = torch.Generator().manual_seed(5)
    x, y = torch.randn(steps, 16, 10, generator=data), torch.randint(0, 3, (steps, 16), generator=data)
    model, optimizer, dst = build()
    updates = []
    for step in range(steps):
        if step == resume_at:
            saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "dst": dst.state_dict()}
            model, optimizer, dst = build()
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            dst.load_state_dict(saved["dst"])
        nn.functional.cross_entropy(model(x[step]), y[step]).backward()
        optimizer.step()
        stats = dst.step()
        if stats:
            updates.append(dst.steps)
        optimizer.zero_grad()
    return [(m.indices, m.values.detach()) for m in model if isinstance(m, SparseLinear)], updates


@pytest.mark.parametrize("method", ["rigl", "chts", "chtss"])
def test_updates_come_at_the_interval_and_a_resumed_loop_equals_the_uninterrupted_one(method):
    straight, updates = _run(80, method=method)
    resumed, _ = _run(80, resume_at=35, method=method)
    assert updates == ([10, 20, 30, 40, 50] if method != "chts" else [10, 20, 30, 40, 50, 60, 70])
    for (indices, values), (indices2, values2) in zip(straight, resumed):
        assert torch.equal(indices, indices2) and torch.equal(values, values2)
    if method == "chtss":  # started at 50% density, ends at the final 20%
        assert [int(i.shape[1]) for i, _ in straight] == [round(0.2 * 320), round(0.2 * 1024)]


def test_start_sparsity_and_refusals():
    assert start_sparsity("chtss", 0.9) == pytest.approx(0.5) and start_sparsity("chts", 0.9) == 0.9
    with pytest.raises(ValueError, match="has no SparseLinear module: call sparsenet.sparsify"):
        DST(nn.Sequential(nn.Linear(3, 3)), None, total_steps=10)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    sparsify(model, 0.5)
    with pytest.raises(ValueError, match="unknown method 'chtx'"):
        DST(model, None, method="chtx", total_steps=10)
    with pytest.raises(ValueError, match="unknown method options"):
        DST(model, None, method="set", total_steps=10, removals="wm")
    for option in ({"init": "brf"}, {"weights": "swi"}):  # the topology and values are sparsify's
        with pytest.raises(ValueError, match="DST takes no init= or weights="):
            DST(model, None, method="chts", total_steps=10, **option)
    with pytest.raises(TypeError, match="total_steps"):  # the schedules are spread over it: no silent default
        DST(model, None, method="set")
    assert sparsenet.DST is DST
