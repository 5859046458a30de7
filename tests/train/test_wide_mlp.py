"""Wide MLPs: --links_per_neuron's per-layer link counts, the memory plan against the counted bytes of a
50k-neuron model, refusing a plan over the limit, mid-epoch checkpoints that resume exactly, and the one law
on 200k-neuron hidden layers."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsenet.models import MLP
from sparsenet.sparse import layer_memory
from sparsenet.train import classify, loop
from sparsenet.train.checkpoint import load_checkpoint
from sparsenet.train.classify import build_config, train
from sparsenet.train.memory_plan import check_plan, plan_mlp
from tests.conftest import TINY_DATA

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, **overrides):
    options = dict(dataset="mnist", data_dir=str(TINY_DATA), hidden=(64, 64), epochs=2, out_dir=str(tmp_path),
                   wandb="off", quiet=True)
    return build_config(**{**options, **overrides})


def test_links_per_neuron_gives_each_layer_k_links_per_neuron(tmp_path):
    config = _config(tmp_path, dataset="digits", hidden=(300, 100), links_per_neuron=6, method="set", epochs=1)
    expected = [6 * (64 + 300) / (2 * 64 * 300), 6 * (300 + 100) / (2 * 300 * 100)]  # digits: 64 pixels
    assert config.final_densities() == pytest.approx(expected)
    links = [round(d * a * b) for d, (a, b) in zip(expected, [(64, 300), (300, 100)])]
    assert config.sparsity == pytest.approx(1 - sum(links) / (64 * 300 + 300 * 100), abs=1e-6)
    assert config.name.startswith("mlp-digits-set-k6-seed0")
    summary = train(config)
    assert summary["links"] == sum(links)  # SET's updates keep every layer's count
    assert json.loads((Path(summary["run_dir"]) / "config.json").read_text())["links_per_neuron"] == 6


def test_links_per_neuron_caps_dense_layers_at_one(tmp_path):
    config = _config(tmp_path, hidden=(3, 100, 100), links_per_neuron=10, method="set")
    assert config.final_densities() == [1.0, 1.0, pytest.approx(0.1)]  # a 3-neuron side cannot hold 10 each


def test_memory_plan_matches_the_counted_bytes_of_a_50k_neuron_model(tmp_path):
    config = _config(tmp_path, hidden=(16667, 16667, 16666), links_per_neuron=10, method="set")
    plan = plan_mlp(config.layer_sizes(), config.final_densities(), 32, 100, 1, 0)
    model = MLP(784, config.hidden, 10, density=config.final_densities(), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(torch.rand(4, 784)).sum().backward()
    optimizer.step()
    counted = layer_memory(model, "momentum")  # counts the transposed caches as built
    for kind, planned in (("weights", plan.values), ("structure", plan.structure), ("grads", plan.gradients),
                          ("optimizer", plan.optimizer)):
        measured = sum(getattr(sparse, kind) for sparse, _ in counted)
        assert abs(planned - measured) <= 0.1 * measured, (kind, planned, measured)
    buffers = sum(b.numel() * b.element_size() for m in model.hidden for b in (m.crow, m.col))
    caches = sum(m.cache.nbytes() for m in model.hidden)
    assert abs(plan.structure - (buffers + caches)) <= 0.1 * (buffers + caches)


def test_a_plan_over_the_limit_is_refused_before_the_model_exists(tmp_path, monkeypatch):
    plan = plan_mlp((784, 1000, 10), [0.1], 32, 1000, 1, 10 * 2**20)
    check_plan(plan, plan.total / 2**30 * 1.01)  # fits
    with pytest.raises(ValueError, match=r"more than the .* of --memory_limit; use fewer --hidden"):
        check_plan(plan, plan.total / 2**30 * 0.99)
    from sparsenet.train import memory_plan
    monkeypatch.setattr(memory_plan, "available_memory", lambda: plan.total * 1.5)
    check_plan(plan, None)  # one process fits; two on this machine share the memory
    with pytest.raises(ValueError, match="available to each of its 2 processes on this machine"):
        check_plan(plan, None, processes=2)
    monkeypatch.setattr(classify, "MLP", lambda *a, **k: pytest.fail("the model was built"))
    with pytest.raises(ValueError, match="this run needs about"):
        train(_config(tmp_path, memory_limit=0.001))
    assert not any(tmp_path.iterdir())  # nothing written


def _metrics(run_dir) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k}
            for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_mid_epoch_checkpoint_resumes_exactly(tmp_path, monkeypatch):
    """Stopped right after a mid-epoch checkpoint of epoch 2, the resumed run's metrics and final weights
    equal an uninterrupted run's."""
    options = dict(epochs=3, checkpoint_every=3, method="chts", sparsity=0.8)
    whole = train(_config(tmp_path, run_name="whole", **options))
    real_save, mid_epoch = loop.save_checkpoint, []

    def stop_after_epoch_2s_second_mid_epoch_checkpoint(path, state):
        real_save(path, state)
        if Path(path).name == "checkpoint.pt" and state["clock"]["interval_weight"] and state["batches"]["epoch"] == 1:
            mid_epoch.append(state["batches"]["position"])
            if len(mid_epoch) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", stop_after_epoch_2s_second_mid_epoch_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, run_name="cut", **options))
    assert mid_epoch == [3, 6] and len(_metrics(tmp_path / "cut")) == 1  # inside epoch 2, after batch 6
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed = train(None, resume=tmp_path / "cut")
    assert _metrics(tmp_path / "cut") == _metrics(whole["run_dir"])
    assert resumed["final_test_accuracy"] == whole["final_test_accuracy"]
    cut, uncut = (load_checkpoint(Path(r) / "checkpoint.pt")["model"] for r in (tmp_path / "cut", whole["run_dir"]))
    assert all(torch.equal(cut[k], uncut[k]) for k in uncut)


@pytest.mark.parametrize("hidden_init", [None, "er"])
def test_hidden_init_keeps_csti_where_the_layer_sees_the_pixels(tmp_path, capsys, monkeypatch, hidden_init):
    # CSTI tiles the 64-pixel correlation over 2000 x 2000: ~8 links per 64 x 64 tile link a few of the
    # neurons; --hidden_init er gives the hidden layer ER (~98% linked) and leaves the first layer CSTI.
    from sparsenet.data import load_vision
    from sparsenet.topology.registry import INITIALIZERS
    calls = []
    for name in ("csti", "er"):
        monkeypatch.setitem(INITIALIZERS, name, lambda out_f, in_f, *a, _f=INITIALIZERS[name], _n=name, **k:
                            calls.append((_n, out_f, in_f)) or _f(out_f, in_f, *a, **k))
    config = _config(tmp_path, dataset="digits", hidden=(2000, 2000), links_per_neuron=4, method="chts",
                     init="csti", hidden_init=hidden_init)
    hidden = classify._build(config, load_vision("digits"), torch.Generator().manual_seed(0))[0].hidden[1]
    assert calls == [("csti", 2000, 64), (hidden_init or "csti", 2000, 2000)]
    linked = torch.unique(hidden.indices[0]).numel() / 2000
    warned = "layer 2 (2000->2000) starts with links on only" in capsys.readouterr().err
    if hidden_init is None:
        assert linked < 0.2 and warned
    else:
        assert linked > 0.9 and not warned


@pytest.mark.parametrize("variant", ["CH2-L3n", "CH3-L3p"])
def test_planned_link_prediction_structures_match_a_built_layer(monkeypatch, variant):
    # The update's layer-wide pair lists (node-based) or path factors (CH3-L3p), planned from mean degrees, against
    # those of an ER layer as built; GEMM_WEIGHTS lowered so this 3000² layer routes as a wide one does.
    from sparsenet.evolution import linkpred
    from sparsenet.topology.er import er
    monkeypatch.setattr(linkpred, "GEMM_WEIGHTS", 1000)
    indices = er(3000, 3000, 10 / 3000, torch.Generator().manual_seed(0))
    graph = linkpred.LayerGraph(indices, (3000, 3000))
    planned = linkpred.planned_structure_bytes((3000, 3000), indices.shape[1], variant, memory_budget=2**20)
    if variant == "CH3-L3p":
        built = 24.0 * float((graph.degree_u.double() ** 2).sum() + (graph.degree_v.double() ** 2).sum())
    else:
        assert linkpred._route(graph, variant, 2**20) == linkpred._Route(False, False, False, True)  # pair lists
        built = 40.0 * (graph.co_u.keys.numel() + graph.co_v.keys.numel())
    assert abs(planned - built) <= 0.1 * built, (planned, built)


def test_one_law_at_200k_neurons_per_hidden_layer(tmp_path):
    """The recipe as a user runs it on 3 hidden layers of 200,000 neurons (a dense 200k² weight: 160 GB):
    training steps and one CHTs update (CH2-L3n-soft, percolation) in a fresh process whose peak RSS stays
    within the memory plan plus torch's own footprint, and far below one dense hidden weight."""
    result = subprocess.run(
        [sys.executable, "cli.py", "train", "--dataset", "digits", "--hidden", "200000,200000,200000",
         "--links_per_neuron", "2", "--method", "chts", "--init", "er", "--regrowth", "ch2_l3n_soft",
         "--epochs", "2", "--batch_size", "128", "--out_dir", str(tmp_path), "--wandb", "off"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    plan = float(re.search(r"total ([\d.]+) GiB", result.stderr).group(1)) * 2**30
    (run_dir,) = tmp_path.iterdir()
    first, last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert first["removed"] > 0 and first["regrown"] > 0  # the update that ends epoch 1 ran
    assert last["peak_rss_bytes"] < plan + 1.0 * 2**30, (last["peak_rss_bytes"], plan)
    assert last["peak_rss_bytes"] < 200_000 * 200_000 * 4 / 50
