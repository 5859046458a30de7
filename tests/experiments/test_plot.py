"""Figures read back: the plotted lines' data against the records they come from, bands over seeds, the
panels and labels, and every bad input as one line (library ValueError, CLI ``error: ...``)."""
import json
import math
import statistics

import pytest
import torch

from sparsenet.experiments.plot import plot
from sparsenet.train.checkpoint import save_checkpoint
from tests.conftest import ROOT


def write_run(folder, method, seed, metrics, dataset="mnist", sparsity=0.99, model="mlp", finished=True, **config):
    folder.mkdir(parents=True)
    config = {"model": model, "dataset": dataset, "method": method, "sparsity": sparsity, "seed": seed, **config}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    if finished:
        (folder / "summary.json").write_text(json.dumps({**config, "links": metrics[-1]["links"]}))
    return folder


def epochs(accuracies, links=100, anp=None):
    return [{"epoch": e + 1, "test_accuracy": a, "links": links if isinstance(links, int) else links[e],
             "anp": None if anp is None else anp[e]} for e, a in enumerate(accuracies)]


def lines(axis):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.lines}


@pytest.fixture
def runs(tmp_path):
    """Two SET seeds and one CHTs seed on MNIST, one CHTs seed on Fashion-MNIST."""
    write_run(tmp_path / "set0", "set", 0, epochs([0.90, 0.95, 0.96]))
    write_run(tmp_path / "set1", "set", 1, epochs([0.92, 0.93, 0.98]))
    write_run(tmp_path / "chts0", "chts", 0, epochs([0.91, 0.97, 0.99], anp=[0.9, 0.8, 0.7]))
    write_run(tmp_path / "f_chts0", "chts", 0, epochs([0.80, 0.85, 0.86]), dataset="fashion_mnist")
    return tmp_path


def test_curves_mean_and_band_over_seeds(runs, tmp_path):
    figure = plot([runs], tmp_path / "out" / "curves.png")
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    mnist, fashion = figure.axes
    assert (mnist.get_title(), fashion.get_title()) == ("mnist", "fashion_mnist")  # the tables' data set order
    plotted = lines(mnist)
    assert list(plotted) == ["set (2 seeds)", "chts"]
    x, y = plotted["set (2 seeds)"]
    assert x == [1, 2, 3] and y == pytest.approx([91.0, 94.0, 97.0])
    assert plotted["chts"][1] == pytest.approx([91.0, 97.0, 99.0])
    band = mnist.collections[0].get_paths()[0].vertices  # ± one standard error of the two seeds
    se = [100 * statistics.stdev(pair) / math.sqrt(2) for pair in ((0.90, 0.92), (0.95, 0.93), (0.96, 0.98))]
    assert band[:, 1].max() == pytest.approx(97.0 + se[2])
    assert band[:, 1].min() == pytest.approx(91.0 - se[0])
    assert len(mnist.collections) == 1  # one seed: no band
    assert lines(fashion)["chts"][1] == pytest.approx([80.0, 85.0, 86.0])
    assert mnist.get_xlabel() == "epochs" and mnist.get_ylabel() == "test accuracy %"


def test_curves_other_metric_steps_and_unfinished_runs(tmp_path):
    steps = [{"step": s, "valid_ppl": p, "links": 10} for s, p in ((100, 50.0), (200, 20.0))]
    write_run(tmp_path / "a", "chts", 0, steps, model="transformer", dataset="multi30k", sparsity=0.9,
              finished=False)
    figure = plot([tmp_path / "a"], tmp_path / "c.svg")
    axis = figure.axes[0]
    assert lines(axis) == {"chts": ([100, 200], [50.0, 20.0])}
    assert axis.get_yscale() == "log" and axis.get_xlabel() == "steps"
    figure = plot([tmp_path / "a"], tmp_path / "c.png", metric="links")
    assert lines(figure.axes[0])["chts"][1] == [10, 10]


def test_panels_per_sparsity_with_the_dense_runs_in_each(tmp_path):
    steps = [{"step": 100, "valid_ppl": 30.0, "links": 5}]
    write_run(tmp_path / "fc", "fc", 0, steps, model="lm", dataset="multi30k", sparsity=0.0)
    write_run(tmp_path / "s7", "set", 0, steps, model="lm", dataset="multi30k", sparsity=0.7)
    write_run(tmp_path / "s9", "set", 0, steps, model="lm", dataset="multi30k", sparsity=0.9)
    figure = plot([tmp_path], tmp_path / "lm.png")
    assert [a.get_title() for a in figure.axes] == ["multi30k, sparsity 0.7", "multi30k, sparsity 0.9"]
    assert all(list(lines(a)) == ["fc", "set"] for a in figure.axes)


def test_variants_of_a_method_are_separate_lines(tmp_path):
    write_run(tmp_path / "a", "set", 0, epochs([0.5]), lr=0.1)
    write_run(tmp_path / "b", "set", 0, epochs([0.7]), lr=0.2)
    figure = plot([tmp_path], tmp_path / "v.png")
    assert lines(figure.axes[0]) == {"set (lr=0.1)": ([1], [50.0]), "set (lr=0.2)": ([1], [70.0])}


def test_topology_links_anp_density(tmp_path):
    write_run(tmp_path / "chtss", "chtss", 0, epochs([0.5, 0.6, 0.7], links=[400, 200, 100], anp=[1.0, 0.5, None]),
              sparsity=0.9)
    write_run(tmp_path / "fc", "fc", 0, epochs([0.5, 0.6, 0.7]), sparsity=0.0)
    figure = plot([tmp_path], tmp_path / "t.png", kind="topology")
    links, anp, density = figure.axes
    assert lines(links) == {"chtss": ([1, 2, 3], [400, 200, 100])}  # the dense run is left out
    assert lines(anp) == {"chtss": ([1, 2], [100.0, 50.0])}  # an epoch without an update has no ANP
    assert lines(density)["chtss"][1] == pytest.approx([40.0, 20.0, 10.0])  # 100 links are the final 10%


def test_topology_without_anp_has_two_rows(tmp_path):
    write_run(tmp_path / "t", "set", 0, [{"step": 1, "valid_ppl": 9.0, "links": 10}], model="transformer",
              dataset="multi30k", sparsity=0.9)
    figure = plot([tmp_path], tmp_path / "t.png", kind="topology")
    assert [a.get_title() for a in figure.axes] == ["multi30k: links", "multi30k: density %"]


def test_records_folder_matches_its_files(tmp_path):
    """The MNIST CHTs line of the recorded three-seed table is the mean of its three metrics files."""
    records = ROOT / "results" / "records" / "mlp_99"
    figure = plot([records], tmp_path / "mlp.png")
    x, y = lines(figure.axes[0])["chts (3 seeds)"]
    seeds = [[json.loads(line)["test_accuracy"] for line in (records / f"mlp-mnist-chts-s0.99-seed{s}" /
                                                               "metrics.jsonl").read_text().splitlines()]
             for s in range(3)]
    assert x == list(range(1, 101))
    assert y == pytest.approx([100 * statistics.mean(values) for values in zip(*seeds)])


def test_memory_report(tmp_path):
    rows = [{"sparsity": s, "params": p, "optimizer": 2 * p, "structure": st, "step_allocated": 10 * 2**20,
             "counted_ratio": c, "allocated_peak_ratio": a, "total_peak_ratio": t}
            for s, p, st, c, a, t in ((0.0, 8 * 2**20, 0, 1.0, 1.0, 1.0), (0.9, 2**20, 2**20, 0.2, 0.5, 0.6))]
    report = tmp_path / "memory.json"
    report.write_text(json.dumps({"model": "mlp", "dataset": "mnist", "device": "cpu", "rows": rows}))
    figure = plot([report], tmp_path / "m.png")
    bars, ratios = figure.axes
    heights = [[patch.get_height() for patch in container] for container in bars.containers]
    assert heights == [[8, 1], [16, 2], [0, 1], [10, 10]]  # params, optimizer, structure, step transient (MiB)
    assert lines(ratios)["allocated peak"] == (["dense", "0.9"], [100.0, 50.0])


def test_scale_benchmark_lines(tmp_path):
    bench = tmp_path / "bench.txt"
    bench.write_text("CPU: test\n" + "\n".join(json.dumps(r) for r in (
        {"method": "set", "width": 10, "links": 1000, "seconds_per_step": 0.1, "update_seconds": 1.0,
         "peak_rss_gib": 1.0},
        {"method": "set", "width": 1, "links": 100, "seconds_per_step": 0.01, "update_seconds": 0.1,
         "peak_rss_gib": 0.5},
        {"method": "chts", "width": 10, "failed": "ValueError: too big"})) + "\n| a | table |\n")
    step, update, rss = plot([bench], tmp_path / "s.png").axes
    assert lines(step) == {"set": ([100, 1000], [0.01, 0.1])}  # sorted by links; the failed row left out
    assert lines(rss)["set"][1] == [0.5, 1.0] and step.get_xscale() == "log"


def test_degrees_start_and_end(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # start: rows of degree 1, 1, 2 over columns 0, 1, 1, 2; end: degrees 0, 0, 4
    save_checkpoint(run / "init.pt", {"model": {"fc.crow": torch.tensor([0, 1, 2, 4], dtype=torch.int32),
                                                "fc.col": torch.tensor([0, 1, 1, 2], dtype=torch.int32)}})
    save_checkpoint(run / "checkpoint.pt", {"model": {"fc.crow": torch.tensor([0, 0, 0, 4], dtype=torch.int32),
                                                      "fc.col": torch.tensor([0, 1, 2, 3], dtype=torch.int32)}})
    output, inputs = plot([run], tmp_path / "d.png", layer="fc").axes
    assert lines(output) == {"run start": ([1, 2], [2, 1]), "run end": ([0, 4], [2, 1])}
    assert lines(inputs) == {"run start": ([1, 2], [2, 1]), "run end": ([1], [4])}


@pytest.mark.parametrize("make, arguments, message", [
    (None, {"paths": []}, "no input: give run directories"),
    (None, {"paths": ["missing"]}, "no such file or folder: "),
    ("runs", {"out": "figure.jpg"}, "--out figure.jpg: the figure's file must end in .png, .pdf, .svg"),
    ("runs", {"kind": "pie"}, "--kind pie: one of curves, topology, memory, scale, degrees"),
    ("runs", {"metric": "bleu"}, "--metric bleu: not in the records of "),
    ("runs", {"kind": "topology", "metric": "links"}, "--metric is for --kind curves, not topology"),
    ("runs", {"kind": "curves", "layer": "fc"}, "--layer is for --kind degrees, not curves"),
    ("empty", {}, "no run with records (config.json and metrics.jsonl) in "),
    ("mixed", {}, "runs of different models (mlp, transformer): plot each model on its own"),
    ("dense", {"kind": "topology"}, "--kind topology: only dense (fc) runs given"),
    ("bad_json", {}, "unreadable records"),
    ("text", {"kind": "memory"}, "not a cli.py memory report"),
    ("text", {"kind": "scale"}, "no benchmark row"),
    ("text", {"kind": "curves"}, "not a folder of runs (for a file give --kind memory or scale)"),
    ("runs", {"kind": "memory"}, "--kind memory reads one file"),
    ("runs", {"kind": "degrees"}, "--kind degrees needs --layer NAME"),
    ("runs", {"layer": "fc"}, "no checkpoint.pt (or init.pt) in it"),
    ("checkpoint", {"layer": "nope"}, "no sparse layer nope (its sparse layers: fc)"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, make, arguments, message):
    path = tmp_path / "input"
    if make in ("runs", "mixed", "dense", "bad_json"):
        write_run(path / "a", "fc" if make == "dense" else "set", 0, epochs([0.5]), sparsity=0.0)
    if make == "mixed":
        write_run(path / "b", "set", 0, [{"step": 1, "valid_ppl": 3.0, "links": 1}], model="transformer")
    if make == "bad_json":
        (path / "a" / "metrics.jsonl").write_text("{not json\n")
    if make == "empty":
        (path / "a").mkdir(parents=True)
        (path / "a" / "config.json").write_text("{}")
    if make == "text":
        path.write_text("hello\n")
    if make == "checkpoint":
        path = tmp_path / "c.pt"
        save_checkpoint(path, {"model": {"fc.crow": torch.tensor([0, 1]), "fc.col": torch.tensor([0])}})
    arguments = {"paths": [path], "out": tmp_path / "f.png", **arguments}
    with pytest.raises(ValueError) as error:
        plot(**arguments)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "f.png").exists()


def test_cli_plot(cli, tmp_path):
    result = cli("plot", ROOT / "results" / "records" / "transformer_multi30k", "--out", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path / 't.png'}" and (tmp_path / "t.png").stat().st_size > 10_000
    result = cli("plot", tmp_path / "missing")
    assert result.returncode == 1 and result.stderr.strip() == "error: --out FILE.png is required (where to save the figure)"
    result = cli("plot", tmp_path / "missing", "--out", tmp_path / "x.png")
    assert result.stderr.strip() == f"error: no such file or folder: {tmp_path / 'missing'}"
