"""Removal rules, regrowth rules and methods are registries: a user's rules registered in their own module run
through the engine, DST and the CLI; unknown names are one line listing the registered ones; the engine's state is
keyed by module name (modules registered in another order resume exactly; position-keyed states load)."""
import copy
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sparsenet
from sparsenet.evolution import (METHODS, REGROWTHS, REMOVALS, Chain, Method, Schedule, TopologyEngine, make_method,
                                 method_names, register_method, register_regrowth)
from sparsenet.sparse import SparseLinear, linear_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def user_rules():
    """``tests/evolution/user_rules.py`` imported (its rules and method registered), unregistered afterwards."""
    module = importlib.import_module("tests.evolution.user_rules")
    yield module
    REMOVALS.pop(module.SMALL_FIRST)
    REGROWTHS.pop(module.FIRST_INPUTS)
    METHODS.pop(module.METHOD)
    sys.modules.pop("tests.evolution.user_rules")


def _layer_keys(layer) -> set:
    return set(linear_keys(layer.indices, layer.in_features).tolist())


def _check_user_update(layer, before_keys, before_values):
    """The update removed the largest weights and regrew only links from the first half of the inputs (links there
    may have been removed and regrown, so the sizes are compared on the other half)."""
    after = _layer_keys(layer)
    removed, regrown = before_keys - after, after - before_keys
    assert removed and len(regrown) == len(removed)
    half = layer.in_features // 2
    elsewhere = {k: abs(v) for k, v in before_values.items() if k % layer.in_features >= half}
    assert min(size for k, size in elsewhere.items() if k in removed) >= max(
        size for k, size in elsewhere.items() if k in after)
    assert all(key % layer.in_features < half for key in regrown)


def test_a_user_rule_runs_through_the_engine(user_rules):
    torch.manual_seed(0)
    layer = SparseLinear(20, 12, density=0.3, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    engine = TopologyEngine(layer, optimizer, make_method(user_rules.METHOD), Schedule(update_interval=1,
                                                                                      total_steps=10, zeta=0.2))
    keys = linear_keys(layer.indices, 20).tolist()
    before = dict(zip(keys, layer.values.detach().tolist()))
    stats = engine.step(1)
    assert stats["regrown"] == stats["removed"] > 0
    _check_user_update(layer, set(keys), before)


def test_a_user_rule_runs_through_dst(user_rules):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 3))
    sparsenet.sparsify(model, 0.7, exclude=("2",))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsenet.DST(model, optimizer, method=user_rules.METHOD, total_steps=4, update_interval=2)
    layer = model[0]
    x, y = torch.randn(16, 20), torch.randint(3, (16,))
    for step in range(2):
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        keys = linear_keys(layer.indices, 20).tolist()
        before = dict(zip(keys, layer.values.detach().tolist()))
        stats = dst.step()
        optimizer.zero_grad()
    assert stats is not None and dst.method.regrowth == user_rules.FIRST_INPUTS
    _check_user_update(layer, set(keys), before)


def _cli(*argv, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *argv], cwd=cwd, capture_output=True, text=True,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("plugin", ["tests/evolution/user_rules.py", "tests.evolution.user_rules"])
def test_a_user_rule_runs_through_the_cli_with_plugin(plugin, tmp_path):
    result = _cli("train", "--plugin", plugin, "--method", "user_rules", "--epochs", "2", "--out_dir",
                  str(tmp_path), "--wandb", "off")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["method"] == "user_rules"
    metrics = [json.loads(line) for line in Path(summary["run_dir"], "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["regrown"] == metrics[0]["removed"] > 0  # the update after the first epoch
    config = json.loads(Path(summary["run_dir"], "config.json").read_text())
    assert config["method"] == "user_rules"


def test_without_the_plugin_the_cli_names_the_registered_methods_and_how_to_register(tmp_path):
    result = _cli("train", "--method", "user_rules", "--out_dir", str(tmp_path), "--wandb", "off")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    line = result.stderr.strip()
    assert line.startswith("error: unknown method 'user_rules'; choose from ['fc', 'static', 'set', 'rigl'")
    assert "register_method" in line and "--plugin MODULE" in line


@pytest.mark.parametrize("call, message", [
    (lambda: make_method("snip"), "unknown method 'snip'; choose from ['cht', 'chts', 'chtss', 'mest', 'rigl', "
                                  "'set', 'static'], or register your own with sparsenet.evolution.register_method("),
    (lambda: make_method("set", removal="snip"), "unknown removal 'snip'; choose from ['mest', 'ri', 'wm', "
                                                 "'wm_signed', 'mest_soft', 'ri_soft', 'wm_soft'], or register your "
                                                 "own with sparsenet.evolution.register_removal(name, score)"),
    (lambda: make_method("set", regrowth="ch4_soft"), "unknown regrowth 'ch4_soft'; choose from ['ch2_l3n', "
                                                      "'ch3_l3n', 'ch3_l3p', 'gradient', 'random', 'ch2_l3n_soft'"),
    (lambda: make_method("set", regrowth="random_soft"), "unknown regrowth 'random_soft'"),
    (lambda: register_method(Method("set")), "method 'set' is already registered; pass replace=True"),
    (lambda: register_regrowth("mine_soft", None), "a regrowth rule's name must be an identifier not ending in _soft"),
    (lambda: register_method(Method("mine", removal="wm", regrowth="nope")), "unknown regrowth 'nope'"),
])
def test_unknown_and_bad_names_are_one_line_errors(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert method_names() == ["static", "set", "rigl", "mest", "cht", "chts", "chtss"]  # nothing registered


def test_soft_is_parsed_once_into_fields():
    chts = make_method("chts")
    assert (chts.removal_score, chts.removal_soft, chts.regrowth_kind, chts.regrowth_soft) == \
        ("wm", True, "ch3_l3p", True)
    hard = make_method("chts", removal="wm", regrowth="ch3_l3p")  # an override re-parses
    assert (hard.removal_soft, hard.regrowth_soft) == (False, False)
    with pytest.raises(TypeError):
        Method("x", removal="wm", regrowth="random", removal_soft=True)  # soft comes from the name only


class TwoLayers(nn.Module):
    """Two chained sparse layers registered first-then-second, or (``reversed``) second-then-first."""

    def __init__(self, reversed_order: bool = False):
        super().__init__()
        torch.manual_seed(0)
        first = SparseLinear(12, 16, density=0.3, generator=torch.Generator().manual_seed(1))
        second = SparseLinear(16, 10, density=0.3, generator=torch.Generator().manual_seed(2))
        head = nn.Linear(10, 3)
        if reversed_order:
            self.second, self.first, self.head = second, first, head
        else:
            self.first, self.second, self.head = first, second, head

    def forward(self, x):
        return self.head(torch.relu(self.second(torch.relu(self.first(x)))))

    def percolation_relations(self):
        return [Chain((self.first, self.second))]


def _setup(reversed_order: bool):
    model = TwoLayers(reversed_order)
    optimizer = torch.optim.SGD([p for _, p in sorted(model.named_parameters())], lr=0.05, momentum=0.9)
    method = make_method("chts", historical_weights=True)
    return model, optimizer, TopologyEngine(model, optimizer, method, Schedule(update_interval=2, total_steps=40),
                                            seed=3)


def _train(model, optimizer, engine, steps) -> None:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(32, 12, generator=g), torch.randint(3, (32,), generator=g)
    for step in steps:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        engine.step(step)


def _links(model) -> list:
    return [(model.first.indices.clone(), model.first.values.detach().clone()),
            (model.second.indices.clone(), model.second.values.detach().clone())]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for pair_a, pair_b in zip(a, b) for x, y in zip(pair_a, pair_b))


@pytest.mark.parametrize("position_keyed", [False, True])
def test_engine_state_resumes_exactly_in_a_model_with_its_modules_registered_in_another_order(position_keyed):
    model, optimizer, engine = _setup(reversed_order=False)
    _train(model, optimizer, engine, range(1, 7))
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), engine.state_dict()))
    assert saved[2]["layers"] == ["first", "second"] and set(saved[2]["history"]) == {"first", "second"}
    assert sum(keys.numel() for keys, _ in saved[2]["history"].values()) > 0  # historical weights recorded
    _train(model, optimizer, engine, range(7, 13))
    expected = _links(model)

    other, other_optimizer, other_engine = _setup(reversed_order=not position_keyed)
    assert [other_engine.names[l] for l in other_engine.layers] == (["first", "second"] if position_keyed
                                                                    else ["second", "first"])
    state = saved[2]
    if position_keyed:  # the format before states were keyed by name: lists and dicts by layer position
        state = {"stopped": state["stopped"], "flagged": [state["layers"].index(n) for n in state["flagged"]],
                 "generator": state["generator"],
                 "history": {state["layers"].index(n): entry for n, entry in state["history"].items()}}
    other.load_state_dict(saved[0])
    other_optimizer.load_state_dict(saved[1])
    other_engine.load_state_dict(state)
    assert {other_engine.names[l]: other_engine.history[other_engine.names[l]][0].numel() for l in other_engine.layers} \
        == {n: entry[0].numel() for n, entry in saved[2]["history"].items()}
    _train(other, other_optimizer, other_engine, range(7, 13))
    assert _same(_links(other), expected)


def test_engine_state_of_other_modules_is_refused():
    _, _, engine = _setup(reversed_order=False)
    state = engine.state_dict()
    state["layers"] = ["first", "third"]
    with pytest.raises(ValueError, match=r"the engine state holds the sparse modules \['first', 'third'\], this "
                                         r"model \['first', 'second'\]"):
        engine.load_state_dict(state)
