"""Topology measures, all from link lists in O(nnz) (plus O(neurons)): nothing of size out x in.

They run once per evaluation, not per step; the power-law fit uses numpy/scipy on the CPU.
"""
import math

import numpy as np
import torch
from scipy import optimize, special

from .ring import ring_distance


def degrees(indices: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(row_degree (out,), col_degree (in,))`` int64: links per output neuron and per input neuron."""
    return torch.bincount(indices[0], minlength=shape[0]), torch.bincount(indices[1], minlength=shape[1])


def powerlaw_exponent(degree: torch.Tensor, x_min: int | None = None) -> tuple[float, int]:
    """Discrete power-law exponent by exact maximum likelihood (Clauset, Shalizi & Newman 2009, eq. 3.5).

    Maximises ``-n log ζ(α, x_min) - α Σ log x`` (Hurwitz zeta) over the degrees ``x >= x_min``. Without
    ``x_min``, it is chosen among the observed degrees (tails of at least 10 values) to minimise the
    Kolmogorov–Smirnov distance between the empirical and fitted discrete CDFs. Returns ``(alpha, x_min)``.
    """
    x = degree[degree > 0].double().sort().values.cpu().numpy()
    if x.size < 2:
        raise ValueError("need at least two positive degrees to fit a power law")
    if x_min is not None:
        return _alpha(x[x >= x_min], float(x_min)), int(x_min)
    best = (math.inf, float("nan"), 1)
    for candidate in np.unique(x)[:-1]:
        tail = x[x >= candidate]
        if tail.size < 10:
            break
        alpha = _alpha(tail, candidate)
        values, counts = np.unique(tail, return_counts=True)
        empirical = np.cumsum(counts) / tail.size
        model = 1.0 - special.zeta(alpha, values + 1) / special.zeta(alpha, candidate)
        distance = float(np.abs(empirical - model).max())
        if distance < best[0]:
            best = (distance, alpha, int(candidate))
    return best[1], best[2]


def _alpha(tail: np.ndarray, x_min: float) -> float:
    log_sum = float(np.log(tail).sum())
    result = optimize.minimize_scalar(lambda a: tail.size * math.log(special.zeta(a, x_min)) + a * log_sum,
                                      bounds=(1.0001, 20.0), method="bounded", options={"xatol": 1e-6})
    return float(result.x)


def mean_ring_distance(indices: torch.Tensor, shape: tuple[int, int]) -> float:
    """Mean ring distance of links from the lattice diagonal, as a share of the largest possible (n_small/2).

    A link joins larger-side node j (centred at ``j * n_small / n_large``) and smaller-side node i; its
    distance is the ring distance between i and that centre. Near 0 for a lattice (BSW beta = 0), about
    0.5 for uniformly random links (beta = 1).
    """
    out_features, in_features = shape
    large, small = (indices[0], indices[1]) if out_features >= in_features else (indices[1], indices[0])
    n_large, n_small = max(shape), min(shape)
    centre = large.double() * (n_small / n_large)
    return float(ring_distance(small.double(), centre, n_small).mean() / (n_small / 2))


def active_neurons(chain: list[torch.Tensor], shapes: list[tuple[int, int]]) -> torch.Tensor:
    """Active-neuron mask over a chain of layers (layer ℓ's outputs are layer ℓ+1's inputs).

    Returns a bool tensor over all neurons, in order: the first layer's inputs, then each layer's
    outputs. An input is active if it has a link in the first layer; a hidden neuron if it has input
    links in its layer and output links in the next; a last-layer output if it has input links.
    """
    masks = [torch.bincount(chain[0][1], minlength=shapes[0][1]) > 0]
    for position, (indices, shape) in enumerate(zip(chain, shapes)):
        has_input = torch.bincount(indices[0], minlength=shape[0]) > 0
        if position + 1 < len(chain):
            has_input &= torch.bincount(chain[position + 1][1], minlength=shape[0]) > 0
        masks.append(has_input)
    return torch.cat(masks)


def active_neuron_rate(chain: list[torch.Tensor], shapes: list[tuple[int, int]]) -> float:
    """ANP: share of the chain's neurons that are active (see ``active_neurons``)."""
    return float(active_neurons(chain, shapes).double().mean())


def credit_assignment_paths(chain: list[torch.Tensor], shapes: list[tuple[int, int]]) -> float:
    """Number of input-to-output paths through the chain: ``1ᵀ A_L ⋯ A_1 1`` by sparse mat-vecs (float64)."""
    paths = torch.ones(shapes[0][1], dtype=torch.float64, device=chain[0].device)
    for indices, shape in zip(chain, shapes):
        paths = torch.zeros(shape[0], dtype=torch.float64, device=paths.device).index_add_(
            0, indices[0], paths[indices[1]])
    return float(paths.sum())


def overlap(removed_keys: torch.Tensor, regrown_keys: torch.Tensor) -> float:
    """``|removed ∩ regrown| / |regrown|`` over linear keys (CHT's topological early-stop signal); 0 if none."""
    if regrown_keys.numel() == 0:
        return 0.0
    return float(torch.isin(regrown_keys, removed_keys).double().mean())


class ITOPTracker:
    """In-time over-parameterisation rate: share of all positions that have ever held a link.

    Keeps the sorted union of the linear keys seen (its size is what the rate counts, at most the number
    of links ever created).
    """

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.seen = torch.empty(0, dtype=torch.int64)

    def update(self, indices: torch.Tensor) -> float:
        keys = indices[0] * self.shape[1] + indices[1]
        self.seen = torch.cat((self.seen.to(keys.device), keys)).unique()
        return self.rate

    @property
    def rate(self) -> float:
        return self.seen.numel() / (self.shape[0] * self.shape[1])
