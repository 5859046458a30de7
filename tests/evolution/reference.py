"""Reference implementations for tests: brute-force Cannistraci-Hebb scores by enumerating length-3 paths, and
exact inclusion probabilities of sampling without replacement."""
import itertools
import math

import torch


def brute_force_ch(indices: torch.Tensor, shape: tuple[int, int], variant: str) -> dict[tuple[int, int], float]:
    """{(u, v): score} for every absent link with a positive score, straight from the definitions."""
    m, n = shape
    neighbours = {}  # outputs are ("u", i), inputs ("v", k)
    for i in range(m):
        neighbours[("u", i)] = set()
    for k in range(n):
        neighbours[("v", k)] = set()
    for i, k in indices.t().tolist():
        neighbours[("u", i)].add(("v", k))
        neighbours[("v", k)].add(("u", i))
    scores = {}
    for u in range(m):
        for v in range(n):
            seed_u, seed_v = ("u", u), ("v", v)
            if seed_v in neighbours[seed_u]:
                continue
            paths = [(b, j) for b in neighbours[seed_u] for j in neighbours[b] if seed_v in neighbours[j]]
            if not paths:
                continue
            community = {b for b, _ in paths} | {j for _, j in paths}
            outside = lambda z: len(neighbours[z] - community - {seed_u, seed_v})
            inside = lambda z: len(neighbours[z] & community)
            if variant == "CH3-L3p":
                score = sum(1 / math.sqrt((1 + outside(b)) * (1 + outside(j))) for b, j in paths)
            elif variant == "CH3-L3n":
                score = sum(1 / (1 + outside(z)) for z in community)
            else:
                score = sum((1 + inside(z)) / (1 + outside(z)) for z in community)
            scores[(u, v)] = score
    return scores


def inclusion_probabilities(weights: list[float], k: int) -> list[float]:
    """Exact inclusion probabilities of successive sampling without replacement (each draw ∝ weight), by
    enumerating orders."""
    n = len(weights)
    inclusion = [0.0] * n
    for order in itertools.permutations(range(n), k):
        p, remaining = 1.0, sum(weights)
        for i in order:
            p *= weights[i] / remaining
            remaining -= weights[i]
        for i in order:
            inclusion[i] += p
    return inclusion
