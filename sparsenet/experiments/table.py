"""A sweep's results as a paper-style markdown table and a PNG plot, with the paper's numbers beside ours.

A record is ``(params, summary)``: the run's sweep parameters and its summary.json (``{}`` for a run that has
not finished). ``summarize`` groups records by the sweep's parameters other than ``seed`` and reports
mean ± standard error over seeds (s.e. = sample std / √n; a single seed has no ±).

Layout rule: the columns are the ``column`` parameter if given, else ``dataset`` if it varies, else ``sparsity``
if it varies, else one column named after the metric. The rows are the combinations of the other varied
parameters (``method`` first), in the order the sweep lists their values. Parameters that do not vary are
printed above the table. A dense ``fc`` run whose sparsity matches no sparse run of the table (the trainer
records 0.0 for dense runs) counts for every sparsity of the table, as the paper's FC row does.

Accuracies and ANP (fractions in summary.json) are shown as percentages; every number has 2 decimals, as the
paper prints them. The best cell of each column is bold (by the sweep's metric goal); a cell whose number of
seeds differs from the expected count shows ``n=k``; a cell without a finished run shows "–".
"""
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .paper import DENSE, paper_value

Record = tuple[dict, dict]
COLUMN_PREFERENCE = ("dataset", "sparsity")
IDENTITY_KEYS = ("model", "dataset", "method", "sparsity")
MISSING = "–"


@dataclass
class Cell:
    """The values of one table cell (already scaled for display) and the paper's number for it."""
    values: list[float] = field(default_factory=list)
    paper: tuple | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def se(self) -> float | None:
        """Standard error of the mean (sample std with ddof=1 over √n); None for fewer than two values."""
        return statistics.stdev(self.values) / math.sqrt(self.n) if self.n > 1 else None


@dataclass
class Table:
    """A summarized sweep: ``cells[(row, column)]`` for the row and column labels in display order."""
    metric: str
    goal: str
    unit: str
    row_header: str
    column_header: str | None
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell]
    fixed: dict
    expected_n: int


def metric_scale(metric: str) -> float:
    """100 for metrics stored as fractions and shown as percentages (accuracies, ANP), else 1."""
    return 100.0 if "accuracy" in metric or metric == "anp" else 1.0


def finished(record: Record, metric: str) -> bool:
    """Whether the run's summary has a value for ``metric``."""
    return record[1].get(metric) is not None


def summarize(records: list[Record], metric: str, group_by: list[str], column: str | None = None,
              goal: str = "maximize", expected_n: int | None = None) -> Table:
    """Group ``records`` by the ``group_by`` parameters into a Table of ``metric`` (see the module's layout rule).

    ``expected_n`` is the number of seeds each cell should have (default: the most any cell has).
    """
    records = spread_dense(records, group_by)
    varied = [k for k in group_by if len(_distinct(records, k)) > 1]
    column = column or next((k for k in COLUMN_PREFERENCE if k in varied), None)
    row_keys = sorted((k for k in varied if k != column), key=lambda k: k != "method")
    fixed = {k: records[0][0].get(k) for k in group_by if k not in varied and k != column} if records else {}
    rows = _distinct(records, *row_keys)
    columns = _distinct(records, column) if column else [()]
    identity = _identity(records)
    scale = metric_scale(metric)
    cells = {}
    for row in rows:
        for col in columns:
            params = {**identity, **fixed, **dict(zip(row_keys, row)), **dict(zip([column] if column else [], col))}
            cells[row, col] = Cell(paper=paper_value(metric, params))
    for params, summary in records:
        if summary.get(metric) is not None:
            key = (_key(params, row_keys), _key(params, [column]) if column else ())
            cells[key].values.append(scale * float(summary[metric]))
    row_labels = {row: _row_label(row_keys, row) for row in rows}
    column_labels = {col: _label(column, col[0]) if column else metric for col in columns}
    return Table(metric=metric, goal=goal, unit="%" if scale == 100.0 else "", row_header=" / ".join(row_keys) or "run",
                 column_header=column, rows=list(row_labels.values()), columns=list(column_labels.values()),
                 cells={(row_labels[r], column_labels[c]): cell for (r, c), cell in cells.items()}, fixed=fixed,
                 expected_n=expected_n or max((cell.n for cell in cells.values()), default=0))


def spread_dense(records: list[Record], group_by: list[str]) -> list[Record]:
    """Copy each ``fc`` run whose sparsity matches no sparse run to every sparsity of the sparse runs."""
    if "sparsity" not in group_by:
        return records
    levels = _distinct([r for r in records if r[0].get("method") != DENSE], "sparsity")
    spread = []
    for params, summary in records:
        if params.get("method") == DENSE and levels and (params.get("sparsity"),) not in levels:
            spread += [({**params, "sparsity": level}, summary) for (level,) in levels]
        else:
            spread.append((params, summary))
    return spread


def _key(params: dict, keys: list[str]) -> tuple:
    return tuple(_hashable(params.get(k)) for k in keys)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _distinct(records: list[Record], *keys: str) -> list[tuple]:
    """The distinct value tuples of ``keys`` over ``records``, in order of first appearance."""
    return list(dict.fromkeys(_key(params, list(keys)) for params, _ in records))


def _identity(records: list[Record]) -> dict:
    """model / dataset / method / sparsity of a finished run (a sparse one if any), for paper look-ups of keys the
    sweep does not name."""
    summaries = sorted((s for _, s in records if s), key=lambda s: s.get("method") == DENSE)
    return {k: summaries[0][k] for k in IDENTITY_KEYS if k in summaries[0]} if summaries else {}


def _label(key: str, value) -> str:
    """A string value as is, anything else as ``key=value``."""
    return value if isinstance(value, str) else f"{key}={value}"


def _row_label(keys: list[str], values: tuple) -> str:
    """The value alone when one parameter makes the rows (the header names it), else ``_label``s joined."""
    if len(keys) == 1:
        return str(values[0])
    return ", ".join(_label(k, v) for k, v in zip(keys, values)) or "all"


def number(mean: float, se: float | None, digits: int = 2) -> str:
    """``mean ± se`` with ``digits`` decimals, or the mean alone when there is no s.e. (one value)."""
    return f"{mean:.{digits}f}" if se is None else f"{mean:.{digits}f} ± {se:.{digits}f}"


def mean_se(values: list, scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± s.e.`` of the non-None ``values`` times ``scale`` (a ``Cell``'s; one value: itself; none: ``–``).
    The one mean ± s.e. of the results tables: sweeps' and W&B's (``summarize``) and records folders'
    (``records.records_table``)."""
    cell = Cell([scale * v for v in values if v is not None])
    return MISSING if not cell.n else number(cell.mean, cell.se, digits)


def best_means(table: Table) -> dict[str, float]:
    """Per column with at least two filled cells, the best mean rounded to 2 decimals (by the table's goal)."""
    pick = min if table.goal == "minimize" else max
    best = {}
    for column in table.columns:
        means = [round(table.cells[row, column].mean, 2) for row in table.rows if table.cells[row, column].n]
        if len(means) > 1:
            best[column] = pick(means)
    return best


def format_cell(cell: Cell, bold: bool, expected_n: int) -> str:
    """``**mean ± se** (n=k; paper mean ± se)`` with the parts that apply."""
    text = MISSING if not cell.n else number(cell.mean, cell.se)
    if bold:
        text = f"**{text}**"
    notes = [f"n={cell.n}"] if cell.n and cell.n != expected_n else []
    if cell.paper is not None:
        notes.append(f"paper {number(*cell.paper[:2])}")
    return f"{text} ({'; '.join(notes)})" if notes else text


def format_markdown(table: Table) -> str:
    """The table as markdown, with a caption naming the metric, the fixed parameters and the paper's sources."""
    best = best_means(table)
    unit = f" ({table.unit})" if table.unit else ""
    caption = [f"{table.metric}{unit}, {table.goal}: mean ± s.e. over seeds (n={table.expected_n} unless shown); "
               f"best per column in bold."]
    if table.column_header:
        caption.append(f"Columns: {table.column_header}.")
    if table.fixed:
        caption.append("Fixed: " + ", ".join(f"{k}={v}" for k, v in table.fixed.items()) + ".")
    sources = sorted({cell.paper[2] for cell in table.cells.values() if cell.paper})
    if sources:
        caption.append(f"Paper: {', '.join(sources)}.")
    lines = [" ".join(caption), "", f"| {table.row_header} | " + " | ".join(table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for row in table.rows:
        cells = [(table.cells[row, col], best.get(col)) for col in table.columns]
        texts = [format_cell(cell, cell.n > 0 and round(cell.mean, 2) == top, table.expected_n) for cell, top in cells]
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def plot(table: Table, path: str | Path) -> Path:
    """Bars of the mean with s.e. error bars, one panel per column, the paper's values ± s.e. as black diamonds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(table.columns), figsize=(1.5 + 0.55 * len(table.rows) * len(table.columns),
                                                                 3.6), squeeze=False)
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(table.rows))]
    for axis, column in zip(axes[0], table.columns):
        _plot_column(axis, table, column, colors)
    axes[0][0].set_ylabel(f"{table.metric}{f' ({table.unit})' if table.unit else ''}")
    with_paper = [axis for axis in axes[0] if axis.get_legend_handles_labels()[0]]
    if with_paper:
        with_paper[-1].legend(loc="best", fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _plot_column(axis, table: Table, column: str, colors: list) -> None:
    """One panel: a bar per row with its s.e., the paper's value ± s.e. as a black diamond; y zoomed to the data."""
    cells = [table.cells[row, column] for row in table.rows]
    positions = range(len(cells))
    axis.bar(positions, [c.mean if c.n else math.nan for c in cells], color=colors,
             yerr=[math.nan if c.se is None else c.se for c in cells], capsize=3)
    papers = [(i, c.paper[0], math.nan if c.paper[1] is None else c.paper[1]) for i, c in enumerate(cells) if c.paper]
    if papers:
        x, mean, se = zip(*papers)
        axis.errorbar(x, mean, yerr=se, fmt="D", markersize=4, capsize=2, color="black", label="paper ± s.e.")
    axis.set_xticks(list(positions), table.rows, rotation=45, ha="right", fontsize="small")
    axis.set_title(column, fontsize="medium")
    _zoom(axis, [c.mean - (c.se or 0) for c in cells if c.n] + [c.mean + (c.se or 0) for c in cells if c.n]
          + [mean for _, mean, _ in papers])


def _zoom(axis, values: list[float]) -> None:
    """Set the y range to the values with a margin (bars of 98% accuracy would all look alike from 0)."""
    if not values:
        return
    low, high = min(values), max(values)
    margin = 0.2 * (high - low) or 1.0
    axis.set_ylim(low - margin, high + margin)


def fits(params: dict, parameters: dict) -> bool:
    """Whether ``params`` lie in the sweep's ``parameters`` (value / values / min–max); fc's sparsity is free."""
    for name, rule in parameters.items():
        value = params.get(name)
        if name == "sparsity" and params.get("method") == DENSE:
            continue
        if "value" in rule and value != rule["value"]:
            return False
        if "values" in rule and value not in rule["values"]:
            return False
        if "min" in rule and "max" in rule and (value is None or not rule["min"] <= value <= rule["max"]):
            return False
    return True


def collect_local(spec: dict, sweep_path: str | Path, runs_dir: str | Path) -> list[Record]:
    """One record per run the local runner plans for the sweep: its params and its summary.json ({} if absent)."""
    from . import sweeps

    folder = Path(runs_dir) / sweeps.sweep_name(spec, sweep_path)
    return [(params, _read_json(folder / sweeps.run_name(params) / "summary.json")) for params in sweeps.expand(spec)]


def collect_dir(runs_dir: str | Path, names: list[str] | None = None) -> list[Record]:
    """One record per ``*/config.json`` under ``runs_dir``: params from the config (only ``names`` if given), and
    the sibling summary.json ({} while the run is unfinished)."""
    records = []
    for config_path in sorted(Path(runs_dir).glob("*/config.json")):
        config = _read_json(config_path)
        params = {k: config.get(k) for k in names} if names is not None else config
        records.append((params, _read_json(config_path.parent / "summary.json")))
    return records


def collect_wandb(spec: dict, project: str) -> list[Record]:
    """Records of the W&B ``project`` ("entity/project" or "project") whose config fits the sweep's parameters."""
    import wandb

    parameters = spec.get("parameters", {})
    records = [({k: run.config.get(k) for k in parameters}, dict(run.summary_metrics) if run.state == "finished"
                else {}) for run in wandb.Api().runs(project)]
    return [record for record in records if fits(record[0], parameters)]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _local_records(spec: dict, sweep_path: str | Path, runs_dir: str | Path) -> tuple[list[Record], Path]:
    """For a grid sweep, the runner's records if any of its runs finished; else (or for a random sweep, whose
    draws depend on the runner's count) the fitting runs of ``<runs_dir>/<sweep name>/``, or of ``runs_dir``
    itself when that folder does not exist. Also returns the folder searched."""
    from . import sweeps

    records = collect_local(spec, sweep_path, runs_dir) if spec["method"] == "grid" else []
    folder = Path(runs_dir) / sweeps.sweep_name(spec, sweep_path)
    if any(finished(r, spec["metric"]["name"]) for r in records):
        return records, folder
    folder = folder if folder.is_dir() else Path(runs_dir)
    parameters = spec.get("parameters", {})
    return [r for r in collect_dir(folder, list(parameters)) if fits(r[0], parameters)], folder


def sweep_order(records: list[Record], parameters: dict) -> list[Record]:
    """``records`` sorted by the position of each parameter's value in the sweep's ``values`` lists."""
    listed = {name: [_hashable(v) for v in rule["values"]] for name, rule in parameters.items() if "values" in rule}

    def rank(params: dict) -> tuple:
        return tuple(values.index(value) if (value := _hashable(params.get(name))) in values else len(values)
                     for name, values in listed.items())
    return sorted(records, key=lambda record: rank(record[0]))


def expected_seeds(parameters: dict) -> int | None:
    """How many seeds the sweep lists (None when it does not say)."""
    rule = parameters.get("seed", {})
    return len(rule["values"]) if "values" in rule else 1 if "value" in rule else None


def build_table(sweep_path: str | Path, runs_dir: str | Path = "runs", wandb_project: str | None = None,
                out: str | Path | None = None) -> str:
    """Summarize the sweep's finished runs; write markdown to ``out`` and the plot beside it; return the markdown.

    Runs come from W&B when ``wandb_project`` is given, else from ``runs_dir`` (see ``_local_records``).
    ``out`` defaults to ``table.md`` in the folder searched (``<runs_dir>/<sweep name>/`` for W&B); the PNG
    has the same name with ``.png``. Raises ValueError when no run has the sweep's metric.
    """
    from . import sweeps

    spec = sweeps.load_sweep(sweep_path)
    name, parameters = sweeps.sweep_name(spec, sweep_path), spec.get("parameters") or {}
    metric = (spec.get("metric") or {}).get("name")
    if not metric:
        raise ValueError(f"sweep {name!r} names no metric ({{name: ..., goal: ...}}): the table needs one")
    if wandb_project:
        records, folder = collect_wandb(spec, wandb_project), Path(runs_dir) / name
        where = f"W&B project {wandb_project}"
    else:
        records, folder = _local_records(spec, sweep_path, runs_dir)
        where = str(folder)
    if not any(finished(r, metric) for r in records):
        raise ValueError(f"no finished run of sweep {name!r} with {metric!r} in {where}")
    table = summarize(sweep_order(records, parameters), metric, [k for k in parameters if k != "seed"],
                      goal=spec["metric"].get("goal", "maximize"), expected_n=expected_seeds(parameters))
    markdown = format_markdown(table)
    out = Path(out) if out else folder / "table.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    plot(table, out.with_suffix(".png"))
    return markdown
