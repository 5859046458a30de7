"""A summary of one layer's topology, for ``cli.py inspect`` and logs."""
import time
from pathlib import Path

import torch

from .bsf import equal_partition as flatten_inputs
from .measures import mean_ring_distance, powerlaw_exponent
from .registry import make_topology


def linked_degrees(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrees of the neurons that have links, ``(output side, input side)``, int64 of length ≤ nnz each:
    neurons not in the link list have degree 0 and take no memory, so the cost follows the links."""
    return torch.unique(indices[0], return_counts=True)[1], torch.unique(indices[1], return_counts=True)[1]


def _degree_summary(linked: torch.Tensor, neurons: int) -> dict:
    """Min, mean, max, sample std and zero count of the degrees of ``neurons`` neurons, of which those with
    links have the degrees ``linked``; a discrete power-law fit of the positive degrees where they vary."""
    d = linked.double()
    zero = neurons - linked.numel()
    mean = float(d.sum()) / neurons
    spread = (float((d - mean).pow(2).sum()) + zero * mean ** 2) / (neurons - 1) if neurons > 1 else 0.0
    summary = {"min": 0 if zero or not linked.numel() else int(linked.min()), "mean": round(mean, 4),
               "max": int(linked.max()) if linked.numel() else 0, "std": round(spread ** 0.5, 4), "zero": zero}
    if linked.numel() >= 10 and int(linked.max()) > int(linked.min()):
        alpha, x_min = powerlaw_exponent(linked)
        summary.update(powerlaw_alpha=round(alpha, 4), powerlaw_x_min=x_min)
    return summary


def describe(indices: torch.Tensor, shape: tuple[int, int]) -> dict:
    """Links, density, degree statistics of both sides (with a power-law fit), mean ring distance; in time and
    memory of the links (a layer of 10^12 neurons per side and a million links is cheap)."""
    row_degree, col_degree = linked_degrees(indices)
    return {"shape": list(shape), "nnz": indices.shape[1], "density": indices.shape[1] / (shape[0] * shape[1]),
            "output_degree": _degree_summary(row_degree, shape[0]),
            "input_degree": _degree_summary(col_degree, shape[1]),
            "mean_ring_distance": round(mean_ring_distance(indices, shape), 4)}


def plot_degrees(indices: torch.Tensor, shape: tuple[int, int], path: str | Path, title: str = "") -> Path:
    """Save log-log degree distributions of both sides as a PNG; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    figure, axis = plt.subplots(figsize=(6, 4))
    for degree, neurons, label in zip(linked_degrees(indices), shape, ("output neurons", "input neurons")):
        counts = torch.bincount(degree)  # length: the largest degree
        present = (counts > 0).nonzero().squeeze(1)
        axis.loglog(present.numpy(), (counts[present].double() / neurons).numpy(), "o", ms=3, label=label)
    axis.set_xlabel("degree")
    axis.set_ylabel("share of neurons")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    tmp.replace(path)
    return path


def inspect_layer(init: str, shape, density: float, seed: int = 0, plot: str | None = None,
                  equal_partition: bool = False, beta: float = 0.25, r: float = 0.25, degree_dist: str = "fixed"
                  ) -> dict:
    """Build one ``shape = (out, in)`` layer with initialiser ``init`` and return its ``describe`` measures
    with the settings and build seconds (``plot``: also save the degree PNG there). ``csti`` correlates
    scikit-learn's 8x8 digits (64 features). ``ValueError`` (one line) for a bad shape or setting."""
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise ValueError(f"--shape must be two positive integers out,in; got {shape!r}")
    shape = tuple(shape)
    options = {"bsw": {"beta": beta}, "brf": {"r": r, "degree_dist": degree_dist}}.get(init, {})
    if init == "csti":
        from sklearn.datasets import load_digits
        options = {"features": torch.from_numpy(load_digits().data).float()}
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    indices = make_topology(init, shape[0], shape[1], density, generator, **options)
    if equal_partition:
        indices = flatten_inputs(indices, shape, generator)
    report = {"init": init, **{k: v for k, v in options.items() if k != "features"}, "seed": seed,
              "seconds": round(time.perf_counter() - start, 4), **describe(indices, shape)}
    if plot:
        report["plot"] = str(plot_degrees(indices, shape, plot, f"{init} {shape[0]}x{shape[1]}"))
    return report
