"""Figures of runs and measurements, drawn with matplotlib's Agg backend (no display needed).

Five kinds, each from files the project already writes:

- ``curves``: a metric of every run against its epochs (MLP) or steps (Transformer, LM), one line per method
  (and variant, as ``records.variants`` tells them apart) with a band of ± one standard error over its seeds;
  a panel per data set. Inputs: run directories (``config.json`` + ``metrics.jsonl``) or folders of them.
- ``topology``: the same runs' links, active-neuron rate (ANP; MLP runs) and density over training. Density
  is ``links / (final links / (1 - sparsity))``: nnz is ``round(density · out · in)`` per layer, so links
  scale with density.
- ``memory``: a ``cli.py memory`` JSON: the allocated bytes of a training step per sparsity (stacked) and
  the counted, allocated and RSS peaks as a share of the dense model's.
- ``scale``: the JSON lines of ``python -m benchmarks.scale``: step time, update time and peak RSS against
  the link count, log-log, one line per method.
- ``degrees``: the output and input degree distributions of one sparse layer in checkpoints (a run
  directory gives its ``init.pt`` when present, labelled start, and its ``checkpoint.pt``, labelled end).

``plot`` returns the matplotlib ``Figure`` (tests read its lines) and writes it to ``out``.
"""
import json
from pathlib import Path

from .records import DATASET_ORDER, LM_METHODS, MLP_METHODS, TRANSFORMER_METHODS, variants
from .table import Cell

KINDS = ("curves", "topology", "memory", "scale", "degrees")
FORMATS = (".png", ".pdf", ".svg")
DEFAULT_METRIC = {"mlp": "test_accuracy", "transformer": "valid_ppl", "lm": "valid_ppl"}
METHOD_ORDER = (*MLP_METHODS, *TRANSFORMER_METHODS, *LM_METHODS)
MIB = 2**20


def plot(paths: list[str | Path], out: str | Path, kind: str | None = None, metric: str | None = None,
         layer: str | None = None, title: str | None = None):
    """Draw ``kind`` (default: ``degrees`` with ``layer``, ``memory`` for a ``.json`` file, ``scale`` for
    another file, else ``curves``) from ``paths`` and save it at ``out`` (.png, .pdf or .svg). ``metric``: the
    ``metrics.jsonl`` key of ``curves`` (default per model: MLP test_accuracy, Transformer and LM valid_ppl).
    Every bad input is a one-line ``ValueError`` raised before anything is drawn."""
    paths = [Path(p) for p in paths]
    out = Path(out)
    if not paths:
        raise ValueError("no input: give run directories, folders of runs, a memory JSON or a scale benchmark file")
    if out.suffix not in FORMATS:
        raise ValueError(f"--out {out}: the figure's file must end in {', '.join(FORMATS)}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"no such file or folder: {', '.join(missing)}")
    kind = kind or ("degrees" if layer else "memory" if paths[0].suffix == ".json" and paths[0].is_file()
                    else "scale" if paths[0].is_file() else "curves")
    if kind not in KINDS:
        raise ValueError(f"--kind {kind}: one of {', '.join(KINDS)}")
    if layer is not None and kind != "degrees":
        raise ValueError(f"--layer is for --kind degrees, not {kind}")
    if metric is not None and kind != "curves":
        raise ValueError(f"--metric is for --kind curves, not {kind}")
    draw = {"curves": lambda: curves(load_runs(paths), metric), "topology": lambda: topology(load_runs(paths)),
            "memory": lambda: memory(_single_file(paths, kind)), "scale": lambda: scale(_single_file(paths, kind)),
            "degrees": lambda: degrees(paths, layer)}[kind]
    figure = draw()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    return figure


def _single_file(paths: list[Path], kind: str) -> Path:
    if len(paths) != 1 or not paths[0].is_file():
        raise ValueError(f"--kind {kind} reads one file, got {', '.join(map(str, paths))}")
    return paths[0]


def load_runs(paths: list[Path]) -> list[dict]:
    """Every run under ``paths`` (a run directory holds ``config.json``; a folder's run directories are found
    at any depth) as ``{"name", "config", "metrics", "summary"}`` (``summary`` None while a run is unfinished);
    runs without records are skipped. ``ValueError`` if none is found or a file is unreadable."""
    folders = []
    for path in paths:
        if not path.is_dir():
            raise ValueError(f"{path}: not a folder of runs (for a file give --kind memory or scale)")
        folders += [path] if (path / "config.json").is_file() else sorted(c.parent for c in path.rglob("config.json"))
    runs = []
    for folder in folders:
        metrics_file = folder / "metrics.jsonl"
        if not metrics_file.is_file():
            continue
        try:
            metrics = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
            config = json.loads((folder / "config.json").read_text())
            summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else None
        except ValueError as error:
            raise ValueError(f"{folder}: unreadable records ({error})") from None
        if metrics:
            runs.append({"name": folder.name, "config": config, "metrics": metrics, "summary": summary})
    if not runs:
        raise ValueError(f"no run with records (config.json and metrics.jsonl) in {', '.join(map(str, paths))}")
    models = sorted({r["config"].get("model", "mlp") for r in runs})
    if len(models) > 1:
        raise ValueError(f"runs of different models ({', '.join(models)}): plot each model on its own")
    return runs


def _groups(runs: list[dict]) -> dict[str, list[tuple[str, list[dict]]]]:
    """``{panel title: [(line label, runs of its seeds)]}``: a panel per data set, or per data set and sparsity
    when its sparse runs have several (the dense runs then in each); methods in the tables' order, the
    variants of a method (``records.variants``) as lines of their own."""
    def dataset_order(name):
        return (DATASET_ORDER.index(name) if name in DATASET_ORDER else len(DATASET_ORDER), name)

    grouped = {}
    for dataset in sorted({r["config"].get("dataset", "?") for r in runs}, key=dataset_order):
        here = [r for r in runs if r["config"].get("dataset", "?") == dataset]
        dense = [r for r in here if r["config"].get("method") == "fc"]
        sparsities = sorted({r["config"].get("sparsity") for r in here if r["config"].get("method") != "fc"})
        for sparsity in sparsities or [None]:
            title = f"{dataset}, sparsity {sparsity:g}" if len(sparsities) > 1 else dataset
            sparse = [r for r in here if r["config"].get("method") != "fc" and r["config"].get("sparsity") == sparsity]
            methods = sorted({r["config"].get("method") for r in dense + sparse},
                             key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), str(m)))
            grouped[title] = []
            for method in methods:
                group = [r for r in dense + sparse if r["config"].get("method") == method]
                grouped[title] += [(f"{method}{label}", seeds)
                                   for label, seeds in (variants(group) if len(group) > 1 else [("", group)])]
    return grouped


def _x_key(runs: list[dict]) -> str:
    return "epoch" if all("epoch" in r["metrics"][0] for r in runs) else "step"


def _series(runs: list[dict], x_key: str, value) -> tuple[list, list, list]:
    """``(x, mean, standard error)`` of ``value(record)`` over the runs at the x values every run has (a value
    of None, as ANP at an epoch without an update, drops that x)."""
    per_run = [{r[x_key]: value(r, run) for r in run["metrics"] if x_key in r} for run in runs]
    common = sorted(set.intersection(*(set(k for k, v in p.items() if v is not None) for p in per_run)))
    cells = [Cell([p[x] for p in per_run]) for x in common]  # the results tables' one mean ± s.e.
    return common, [cell.mean for cell in cells], [cell.se or 0.0 for cell in cells]


def _line(axis, x, mean, error, label, seeds):
    if not x:
        return
    line, = axis.plot(x, mean, label=f"{label} ({seeds} seeds)" if seeds > 1 else label, linewidth=1.2)
    if seeds > 1:
        axis.fill_between(x, [m - e for m, e in zip(mean, error)], [m + e for m, e in zip(mean, error)],
                          color=line.get_color(), alpha=0.25, linewidth=0)


def _figure(panels: int, rows: int = 1):
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    figure = Figure(figsize=(5.2 * panels, 3.6 * rows))
    axes = figure.subplots(rows, panels, squeeze=False)
    for axis in axes.flat:  # up to 20 distinguishable lines per panel
        axis.set_prop_cycle(color=[colormaps["tab20"](i) for i in (*range(0, 20, 2), *range(1, 20, 2))])
    return figure, axes


def curves(runs: list[dict], metric: str | None = None):
    """One panel per data set: ``metric`` against epochs or steps, a line per method, a band over seeds."""
    model = runs[0]["config"].get("model", "mlp")
    metric = metric or DEFAULT_METRIC.get(model, "valid_loss")
    lacking = [r["name"] for r in runs if not any(metric in record for record in r["metrics"])]
    if lacking:
        known = sorted(set().union(*(record.keys() for record in runs[0]["metrics"])))
        raise ValueError(f"--metric {metric}: not in the records of {', '.join(lacking[:3])}"
                         f"{' ...' if len(lacking) > 3 else ''} (they hold {', '.join(known)})")
    scale = 100.0 if metric.endswith("accuracy") else 1.0
    x_key = _x_key(runs)
    grouped = _groups(runs)
    figure, axes = _figure(len(grouped))
    for axis, (dataset, lines) in zip(axes[0], grouped.items()):
        for label, seeds in lines:
            x, mean, error = _series(seeds, x_key, lambda r, _: None if r.get(metric) is None else scale * r[metric])
            _line(axis, x, mean, error, label, len(seeds))
        axis.set_title(dataset, fontsize=10)
        axis.set_xlabel(x_key + "s")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_ylabel(metric.replace("_", " ") + (" %" if scale != 1.0 else ""))
        if metric.endswith("ppl"):
            axis.set_yscale("log")
        if metric.endswith("accuracy"):
            _zoom(axis)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return figure


def _zoom(axis) -> None:
    """Accuracy panels show the range of the last 90% of training: the first epochs rise from far below."""
    tails = [line.get_ydata()[len(line.get_ydata()) // 10:] for line in axis.lines]
    tails = [value for tail in tails for value in tail]
    if tails:
        low, high = min(tails), max(tails)
        axis.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))


def _density(record: dict, run: dict) -> float:
    final_links = (run["summary"] or {}).get("links") or run["metrics"][-1]["links"]
    return record["links"] / (final_links / (1.0 - run["config"]["sparsity"]))


def topology(runs: list[dict]):
    """Rows links / ANP / density (ANP only where the records hold it), a column per data set, against epochs
    or steps; the dense baseline is left out."""
    runs = [r for r in runs if r["config"].get("method") != "fc"]
    if not runs:
        raise ValueError("--kind topology: only dense (fc) runs given; their links do not change")
    quantities = [("links", lambda r, _: r.get("links")), ("ANP %", lambda r, _: None if r.get("anp") is None
                                                            else 100 * r["anp"]),
                  ("density %", lambda r, run: 100 * _density(r, run))]
    if not any("anp" in record for run in runs for record in run["metrics"]):
        quantities.pop(1)
    x_key = _x_key(runs)
    grouped = _groups(runs)
    figure, axes = _figure(len(grouped), len(quantities))
    for column, (dataset, lines) in enumerate(grouped.items()):
        for row, (name, value) in enumerate(quantities):
            axis = axes[row][column]
            for label, seeds in lines:
                x, mean, error = _series(seeds, x_key, value)
                _line(axis, x, mean, error, label, len(seeds))
            axis.set_title(f"{dataset}: {name}", fontsize=10)
            axis.set_xlabel(x_key + "s")
            axis.set_ylabel(name)
            if name != "ANP %":
                axis.set_yscale("log")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    return figure


def memory(path: Path):
    """A ``cli.py memory`` JSON: the allocated peak of a training step per sparsity, stacked as its report
    counts it (parameters, optimizer state, structure, the step's transient: activations, gradients and
    temporaries), and the counted, allocated and RSS peaks as a share of the dense model's."""
    try:
        report = json.loads(path.read_text())
        rows = report["rows"]
        parts = {name: [row[key] / MIB for row in rows] for name, key in
                 (("params", "params"), ("optimizer", "optimizer"), ("structure", "structure"),
                  ("step transient (activations, gradients)", "step_allocated"))}
        ratios = {name: [100 * row[key] for row in rows] for name, key in
                  (("counted", "counted_ratio"), ("allocated peak", "allocated_peak_ratio"),
                   ("RSS total peak", "total_peak_ratio"))}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a cli.py memory report ({type(error).__name__}: {error})") from None
    labels = ["dense" if row["sparsity"] == 0 else f"{row['sparsity']:g}" for row in rows]
    figure, axes = _figure(2)
    bars, lines = axes[0]
    bottom = [0.0] * len(rows)
    for name, values in parts.items():
        bars.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    bars.set_xlabel("sparsity")
    bars.set_ylabel("MiB allocated at a training step's peak")
    bars.legend(fontsize=7)
    for name, values in ratios.items():
        lines.plot(labels, values, marker="o", label=name)
    lines.set_xlabel("sparsity")
    lines.set_ylabel("% of the dense model")
    lines.set_ylim(0, 105)
    lines.grid(alpha=0.3)
    lines.legend(fontsize=7)
    sizes = report.get("sizes", {})
    figure.suptitle(f"{report.get('model', '?')} {report.get('dataset', '')} on {report.get('device', '?')}"
                    f" ({', '.join(f'{k} {v}' for k, v in sizes.items())})", fontsize=9)
    return figure


def scale(path: Path):
    """The JSON lines of ``python -m benchmarks.scale`` (other lines are skipped): step time, update time and
    peak RSS against links, log-log, a line per method; failed rows are left out."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "width" in row and "failed" not in row:
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no benchmark row (a JSON line with width, links and times) in it")
    figure, axes = _figure(3)
    for axis, (key, name) in zip(axes[0], (("seconds_per_step", "seconds per step"),
                                           ("update_seconds", "seconds per topology update"),
                                           ("peak_rss_gib", "peak RSS GiB"))):
        for method in dict.fromkeys(row["method"] for row in rows):
            mine = sorted((r for r in rows if r["method"] == method and key in r), key=lambda r: r["links"])
            axis.plot([r["links"] for r in mine], [r[key] for r in mine], marker="o", label=method)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("links")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    return figure


def _checkpoints(paths: list[Path]) -> list[tuple[str, Path]]:
    files = []
    for path in paths:
        if path.is_dir():
            found = [(f"{path.name} {label}", path / name) for label, name in (("start", "init.pt"),
                                                                                ("end", "checkpoint.pt"))
                     if (path / name).is_file()]
            if not found:
                raise ValueError(f"{path}: no checkpoint.pt (or init.pt) in it")
            files += found
        else:
            files.append((path.name, path))
    return files


def degrees(paths: list[Path], layer: str | None):
    """Output (per row) and input (per column) degree distributions of sparse layer ``layer`` in each
    checkpoint, log-log. Input neurons after the last linked one are not in a CSR checkpoint, so the input
    side counts the neurons up to it."""
    import torch

    from ..train.checkpoint import load_checkpoint
    if not layer:
        raise ValueError("--kind degrees needs --layer NAME (a sparse layer's name in the model's state dict)")
    figure, axes = _figure(2)
    for label, file in _checkpoints(paths):
        state = load_checkpoint(file).get("model", {})
        if f"{layer}.crow" not in state:
            layers = sorted(key[:-len(".crow")] for key in state if key.endswith(".crow"))
            raise ValueError(f"{file}: no sparse layer {layer} (its sparse layers: {', '.join(layers) or 'none'})")
        crow, col = state[f"{layer}.crow"].long(), state[f"{layer}.col"].long()
        for axis, degree in zip(axes[0], (crow.diff(), torch.bincount(col))):
            counts = torch.bincount(degree)
            present = counts.nonzero().flatten()
            axis.plot(present.tolist(), counts[present].tolist(), marker=".", linewidth=0.8, label=label)
    for axis, side in zip(axes[0], ("output", "input")):
        axis.set_xscale("symlog", linthresh=1)
        axis.set_yscale("log")
        axis.set_xlabel(f"{side} neuron degree")
        axis.set_ylabel("neurons")
        axis.set_title(f"{layer}: {side} side", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return figure
