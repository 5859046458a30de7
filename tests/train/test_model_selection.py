"""Model selection, one rule for both recipes: a seeded stratified validation split, and "best" only among
evaluations at the final density (density-decay methods), evaluated before that step's topology update."""
import json
from pathlib import Path

import pytest
import torch

from sparsenet.data import VisionData, split_validation
from sparsenet.evolution import Schedule, TopologyEngine, make_method
from sparsenet.train import classify
from sparsenet.train.classify import _select
from tests.evolution.test_engine import TinyMLP


def _data(n=600, classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(classes, (n,), generator=g)
    return VisionData("toy", torch.randn(n, 4, generator=g) + y[:, None], y, torch.zeros(1, 4),
                      torch.zeros(1, dtype=torch.long), classes)


def test_validation_split_is_disjoint_stratified_and_seeded():
    data = _data()
    split = split_validation(data, 0.2, seed=3)
    rows = lambda x: {tuple(r.tolist()) for r in x}
    assert not rows(split.train_x) & rows(split.valid_x)  # disjoint
    assert rows(split.train_x) | rows(split.valid_x) == rows(data.train_x)  # nothing lost
    for label in range(3):  # stratified: round(0.2 · n_c) of every class
        assert int((split.valid_y == label).sum()) == round(0.2 * int((data.train_y == label).sum()))
    again, other = split_validation(data, 0.2, seed=3), split_validation(data, 0.2, seed=4)
    assert torch.equal(again.valid_x, split.valid_x) and not torch.equal(other.valid_x, split.valid_x)
    assert split_validation(data, 0.0, seed=3) is data
    with pytest.raises(ValueError, match="valid_fraction"):
        split_validation(data, 1.0, seed=0)


def test_final_density_is_reached_only_after_the_last_update():
    model = TinyMLP(density=0.5)
    engine = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.1), make_method("chtss"),
                            Schedule(update_interval=10, total_steps=100, t_end=75), density=0.2)
    assert engine.schedule.last_update == 70
    assert not engine.at_final_density(70) and engine.at_final_density(71)
    static = TopologyEngine(model, torch.optim.SGD(model.parameters(), lr=0.1), make_method("set"),
                            Schedule(update_interval=10, total_steps=100))
    assert static.at_final_density(1)


def test_select_keeps_the_maximum_and_the_test_accuracy_of_the_best_validation_epoch():
    best = {"test_accuracy": None, "valid_accuracy": None, "test_accuracy_at_best_valid": None, "epoch": None}
    for epoch, (test, valid) in enumerate([(0.80, 0.70), (0.90, 0.75), (0.85, 0.80), (0.95, 0.80)], 1):
        _select(best, test, (0.0, valid), epoch)
    assert best == {"test_accuracy": 0.95, "valid_accuracy": 0.80, "test_accuracy_at_best_valid": 0.85, "epoch": 3}


def test_chtss_mlp_reports_only_epochs_at_the_final_density(tmp_path):
    config = classify.build_config(dataset="digits", method="chtss", sparsity=0.9, epochs=8, hidden=(64, 64),
                                   out_dir=str(tmp_path), wandb="off", quiet=True)
    summary = classify.train(config)
    records = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    final_links = summary["links"]
    # epoch e is evaluated before its update, so at the density left by epoch e-1's update
    links_at_eval = [None] + [r["links"] for r in records[:-1]]
    allowed = [r for r, links in zip(records, links_at_eval) if links == final_links]
    denser = [r for r, links in zip(records, links_at_eval) if links != final_links]
    assert allowed and denser  # the run had both phases (starts at 50% density, decays by epoch 6 of 8)
    assert summary["best_test_accuracy"] == max(r["test_accuracy"] for r in allowed)
    best_valid = max(allowed, key=lambda r: (r["valid_accuracy"], -r["epoch"]))
    assert summary["best_valid_epoch"] == best_valid["epoch"]
    assert summary["test_accuracy_at_best_valid"] == best_valid["test_accuracy"]


def test_each_method_starts_from_its_declared_initialiser():
    """CHTs' first layer is CSTI of the training features (so it changes with them); SET's (ER) does not
    depend on them."""
    from sparsenet.data import load_vision
    from sparsenet.topology import make_topology
    data = load_vision("digits")
    config = classify.build_config(dataset="digits", method="chts", hidden=(128, 128), quiet=True, wandb="off")
    model = classify._build(config, data, torch.Generator().manual_seed(0))[0]
    first = model.hidden[0]
    expected = make_topology("csti", first.out_features, first.in_features, first.density,
                             torch.Generator().manual_seed(0), features=data.train_x)
    assert torch.equal(first.indices, expected)
    shuffled = VisionData("digits", data.train_x[:, torch.randperm(64, generator=torch.Generator().manual_seed(1))],
                          data.train_y, data.test_x, data.test_y, 10)
    other = classify._build(config, shuffled, torch.Generator().manual_seed(0))[0]
    assert not torch.equal(other.hidden[0].indices, first.indices)  # the links depend on the features
    set_config = classify.build_config(dataset="digits", method="set", hidden=(128, 128), quiet=True, wandb="off")
    set_model = classify._build(set_config, data, torch.Generator().manual_seed(0))[0]
    set_other = classify._build(set_config, shuffled, torch.Generator().manual_seed(0))[0]
    assert torch.equal(set_model.hidden[0].indices, set_other.hidden[0].indices)  # ER ignores the features
