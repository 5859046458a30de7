"""A summary of one layer's topology, for ``cli.py inspect`` and logs."""
from pathlib import Path

import torch

from .measures import degrees, mean_ring_distance, powerlaw_exponent


def _degree_summary(degree: torch.Tensor) -> dict:
    d = degree.double()
    summary = {"min": int(degree.min()), "mean": round(float(d.mean()), 4), "max": int(degree.max()),
               "std": round(float(d.std()), 4) if degree.numel() > 1 else 0.0, "zero": int((degree == 0).sum())}
    if int((degree > 0).sum()) >= 10 and int(degree.max()) > int(degree[degree > 0].min()):
        alpha, x_min = powerlaw_exponent(degree)
        summary.update(powerlaw_alpha=round(alpha, 4), powerlaw_x_min=x_min)
    return summary


def describe(indices: torch.Tensor, shape: tuple[int, int]) -> dict:
    """Links, density, degree statistics of both sides (with a power-law fit), mean ring distance."""
    row_degree, col_degree = degrees(indices, shape)
    return {"shape": list(shape), "nnz": indices.shape[1], "density": indices.shape[1] / (shape[0] * shape[1]),
            "output_degree": _degree_summary(row_degree), "input_degree": _degree_summary(col_degree),
            "mean_ring_distance": round(mean_ring_distance(indices, shape), 4)}


def plot_degrees(indices: torch.Tensor, shape: tuple[int, int], path: str | Path, title: str = "") -> Path:
    """Save log-log degree distributions of both sides as a PNG; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    figure, axis = plt.subplots(figsize=(6, 4))
    for degree, label in zip(degrees(indices, shape), ("output neurons", "input neurons")):
        counts = torch.bincount(degree)
        present = (counts > 0).nonzero().squeeze(1)
        present = present[present > 0]
        axis.loglog(present.numpy(), (counts[present].double() / degree.numel()).numpy(), "o", ms=3, label=label)
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
