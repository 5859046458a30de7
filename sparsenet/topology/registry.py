"""Initialisers by name, for the CLI and the engine config."""
import torch

from .brf import brf
from .bsf import bsf
from .bsw import bsw
from .csti import csti
from .er import er

INITIALIZERS = {
    "er": lambda out_f, in_f, density, generator, **_: er(out_f, in_f, density, generator),
    "bsw": lambda out_f, in_f, density, generator, beta=0.25, **_: bsw(out_f, in_f, density, beta, generator),
    "bsf": lambda out_f, in_f, density, generator, **_: bsf(out_f, in_f, density, generator),
    "brf": lambda out_f, in_f, density, generator, r=0.25, degree_dist="fixed", **_:
        brf(out_f, in_f, density, r, degree_dist, generator),
    "csti": lambda out_f, in_f, density, generator, features=None, **_:
        csti(_required(features), out_f, density, in_f, generator),
}
OPTIONS = {"beta", "r", "degree_dist", "features"}


def _required(features):
    if features is None:
        raise ValueError("init 'csti' needs features: the training inputs, (n_samples, n_features)")
    return features


def make_topology(name: str, out_features: int, in_features: int, density: float,
                  generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """Links ``(2, nnz)`` of the named initialiser; ``options`` among ``OPTIONS`` (others are an error)."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown init {name!r}; choose from {sorted(INITIALIZERS)}")
    unknown = set(options) - OPTIONS
    if unknown:
        raise ValueError(f"unknown init options {sorted(unknown)}; valid: {sorted(OPTIONS)}")
    return INITIALIZERS[name](out_features, in_features, density, generator, **options)
