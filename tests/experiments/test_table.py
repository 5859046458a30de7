"""Sweep results table: exact means and standard errors, bold best, missing cells, the paper's numbers, the PNG."""
import json
import shutil

import pytest

from sparsenet.experiments.paper import paper_value
from sparsenet.experiments.sweeps import expand, load_sweep, run_name
from sparsenet.experiments.table import build_table, format_markdown, summarize

SWEEP = """
name: grid
program: cli.py
method: grid
metric: {name: best_test_accuracy, goal: maximize}
parameters:
  method: {values: [set, chts]}
  dataset: {values: [mnist, fashion_mnist]}
  sparsity: {value: 0.99}
  seed: {values: [0, 1, 2]}
"""
# best_test_accuracy of seeds 0, 1, 2 (fractions, as summary.json stores them)
ACCURACY = {("set", "mnist"): (0.980, 0.981, 0.985), ("set", "fashion_mnist"): (0.905, 0.905, 0.911),
            ("chts", "mnist"): (0.987, 0.989, 0.991), ("chts", "fashion_mnist"): (0.900, 0.904, 0.908)}
# By hand, in %: mean, and s.e. = sqrt(sum of squared deviations / (n - 1)) / sqrt(3)
#   set  mnist   98.0 98.1 98.5 → 98.20; deviations -.2 -.1 .3 → sqrt(.14/2)/sqrt(3) = .1528 → 0.15
#   set  fashion 90.5 90.5 91.1 → 90.70; deviations -.2 -.2 .4 → sqrt(.24/2)/sqrt(3) = .2000 → 0.20
#   chts mnist   98.7 98.9 99.1 → 98.90; deviations -.2 0 .2   → sqrt(.08/2)/sqrt(3) = .1155 → 0.12
#   chts fashion 90.0 90.4 90.8 → 90.40; deviations -.4 0 .4   → sqrt(.32/2)/sqrt(3) = .2309 → 0.23
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_run(folder, method, dataset, seed, accuracy, sparsity=0.99):
    run = folder / f"mlp-{dataset}-{method}-s{sparsity}-seed{seed}"
    run.mkdir(parents=True)
    config = {"model": "mlp", "dataset": dataset, "method": method, "sparsity": sparsity, "seed": seed, "zeta": 0.3,
              "init": None, "removal": None, "regrowth": None}
    summary = {"model": "mlp", "dataset": dataset, "method": method, "sparsity": sparsity, "seed": seed,
               "best_test_accuracy": accuracy, "final_test_accuracy": accuracy - 0.001, "anp": 0.5}
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture
def sweep(tmp_path):
    """The sweep YAML, with its 12 finished runs under tmp_path/runs/grid/."""
    for (method, dataset), accuracies in ACCURACY.items():
        for seed, accuracy in enumerate(accuracies):
            _write_run(tmp_path / "runs" / "grid", method, dataset, seed, accuracy)
    path = tmp_path / "grid.yaml"
    path.write_text(SWEEP)
    return path


def _cells(markdown):
    """{(row, column): cell text} of the markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {(row[0], column): text for row in rows for column, text in zip(header[1:], row[1:])}


def test_means_standard_errors_bold_best_and_paper(sweep, tmp_path):
    cells = _cells(build_table(sweep, runs_dir=tmp_path / "runs"))
    assert cells == {
        ("set", "mnist"): "98.20 ± 0.15 (paper 98.14 ± 0.02)",
        ("set", "fashion_mnist"): "**90.70 ± 0.20** (paper 89.00 ± 0.09)",
        ("chts", "mnist"): "**98.90 ± 0.12** (paper 98.81 ± 0.04)",
        ("chts", "fashion_mnist"): "90.40 ± 0.23 (paper 90.93 ± 0.03)",
    }


def test_writes_markdown_and_a_png_beside_it(sweep, tmp_path):
    markdown = build_table(sweep, runs_dir=tmp_path / "runs")
    assert (tmp_path / "runs" / "grid" / "table.md").read_text() == markdown
    assert (tmp_path / "runs" / "grid" / "table.png").read_bytes()[:8] == PNG_MAGIC
    build_table(sweep, runs_dir=tmp_path / "runs", out=tmp_path / "elsewhere" / "t.md")
    assert (tmp_path / "elsewhere" / "t.png").read_bytes()[:8] == PNG_MAGIC


def test_missing_cell_and_seed_count(sweep, tmp_path):
    runs = tmp_path / "runs" / "grid"
    for seed in range(3):
        shutil.rmtree(runs / f"mlp-fashion_mnist-set-s0.99-seed{seed}")
    shutil.rmtree(runs / "mlp-mnist-chts-s0.99-seed2")
    cells = _cells(build_table(sweep, runs_dir=tmp_path / "runs"))
    assert cells["set", "fashion_mnist"] == "– (paper 89.00 ± 0.09)"
    assert cells["chts", "fashion_mnist"] == "90.40 ± 0.23 (paper 90.93 ± 0.03)"  # alone in its column: not bold
    # 98.7 98.9 → 98.80 ± sqrt(.02)/sqrt(2) = 0.10
    assert cells["chts", "mnist"] == "**98.80 ± 0.10** (n=2; paper 98.81 ± 0.04)"


def test_runner_layout_shows_planned_runs_that_have_not_finished(tmp_path):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(SWEEP.replace("[set, chts]", "[set, chts, rigl]"))
    for params in expand(load_sweep(sweep)):
        if params["method"] == "rigl":  # planned, not run
            continue
        run = tmp_path / "runs" / "grid" / run_name(params)
        run.mkdir(parents=True)
        accuracy = ACCURACY[params["method"], params["dataset"]][params["seed"]]
        (run / "summary.json").write_text(json.dumps({"best_test_accuracy": accuracy}))
    cells = _cells(build_table(sweep, runs_dir=tmp_path / "runs"))
    assert cells["rigl", "mnist"] == "– (paper 98.61 ± 0.01)"
    assert cells["chts", "mnist"] == "**98.90 ± 0.12** (paper 98.81 ± 0.04)"


def test_runs_outside_the_sweep_are_ignored(sweep, tmp_path):
    _write_run(tmp_path / "runs" / "grid", "chts", "mnist", 0, 0.5, sparsity=0.9)
    _write_run(tmp_path / "runs" / "grid", "rigl", "mnist", 0, 0.5)
    cells = _cells(build_table(sweep, runs_dir=tmp_path / "runs"))
    assert set(cells) == {(m, d) for m in ("set", "chts") for d in ("mnist", "fashion_mnist")}
    assert cells["chts", "mnist"] == "**98.90 ± 0.12** (paper 98.81 ± 0.04)"


def test_no_finished_run_is_a_value_error(sweep, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no finished run of sweep 'grid'.*empty"):
        build_table(sweep, runs_dir=tmp_path / "empty")


def test_dense_run_counts_for_every_sparsity_and_minimize_bolds_the_lowest():
    records = [({"method": "fc", "dataset": "multi30k", "sparsity": 0.0, "seed": 0}, {"loss": 2.0}),
               ({"method": "set", "dataset": "multi30k", "sparsity": 0.9, "seed": 0}, {"loss": 3.0}),
               ({"method": "set", "dataset": "multi30k", "sparsity": 0.95, "seed": 0}, {"loss": 1.0})]
    table = summarize(records, "loss", ["method", "dataset", "sparsity"], goal="minimize")
    assert (table.column_header, table.columns, table.rows) == ("sparsity", ["sparsity=0.9", "sparsity=0.95"],
                                                                  ["fc", "set"])
    assert [table.cells["fc", c].mean for c in table.columns] == [2.0, 2.0]
    cells = _cells(format_markdown(table))
    assert (cells["fc", "sparsity=0.9"], cells["set", "sparsity=0.95"]) == ("**2.00**", "**1.00**")


def test_paper_lookup():
    assert paper_value("best_test_accuracy", {"dataset": "mnist", "method": "chts", "sparsity": 0.99}) == (
        98.81, 0.04, "NIPS Table 7")
    assert paper_value("best_test_accuracy", {"dataset": "emnist", "method": "chts", "sparsity": 0.99,
                                              "regrowth": "ch2_l3n_soft"}) == (87.82, 0.04, "NIPS Table 7")
    assert paper_value("bleu", {"dataset": "iwslt14", "method": "fc", "sparsity": 0.9}) == (24.48, 0.30,
                                                                                           "NIPS Table 2")
    assert paper_value("bleu", {"dataset": "wmt17", "method": "mest", "sparsity": 0.95})[:2] == (20.70, 0.07)
    assert paper_value("sacrebleu", {"dataset": "wmt17", "method": "chts", "sparsity": 0.9}) is None


def test_paper_lookup_of_ablation_options():
    chts = {"dataset": "mnist", "method": "chts", "sparsity": 0.99}
    assert paper_value("best_test_accuracy", {**chts, "zeta": 0.3, "init": "csti"})[:2] == (98.81, 0.04)
    assert paper_value("best_test_accuracy", {**chts, "regrowth": "random"}) is None  # not the paper's CHTs
    assert paper_value("best_test_accuracy", {**chts, "zeta": 0.1}) is None
    multi30k = {"model": "transformer", "dataset": "multi30k", "method": "chts", "sparsity": 0.9}
    assert paper_value("bleu", {**multi30k, "removal": "ri"}) == (28.91, None, "NIPS Table 12")
    assert paper_value("bleu", {**multi30k, "init": "bsw"}) == (29.81, 0.37, "NIPS Table 2")
