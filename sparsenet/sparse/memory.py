"""Bytes of weights, gradients and optimizer state of a model, sparse as stored vs its dense twin.

The dense twin is the same model with every ``SparseLinear`` replaced by an ``nn.Linear`` (what a
dense+mask implementation holds, before counting its masks). Counts are exact tensor bytes, not
process measurements.
"""
from dataclasses import dataclass

from torch import nn

from .linear import SparseLinear

OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class LayerMemory:
    """Bytes of one module's own parameters. ``structure``: indices + CSR caches (sparse only)."""
    name: str
    weights: int
    structure: int
    grads: int
    optimizer: int

    @property
    def total(self) -> int:
        return self.weights + self.structure + self.grads + self.optimizer


def _own_parameter_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))


def layer_memory(model: nn.Module, optimizer: str = "adam") -> list[tuple[LayerMemory, LayerMemory]]:
    """Per module with parameters: ``(sparse, dense)`` byte counts for the given optimizer.

    ``optimizer``: one of ``OPTIMIZER_SLOTS`` (number of per-parameter state tensors it keeps).
    Sparse structure counts the CSR caches as if built (they are during training).
    """
    if optimizer not in OPTIMIZER_SLOTS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZER_SLOTS)}")
    slots = OPTIMIZER_SLOTS[optimizer]
    rows = []
    for name, module in model.named_modules():
        params = _own_parameter_bytes(module)
        if params == 0:
            continue
        if isinstance(module, SparseLinear):
            element = module.values.element_size()
            cache = module.cache.nbytes()
            sparse = LayerMemory(name, params, module.memory_bytes()["indices"] + cache, params, slots * params)
            dense_params = params + (module.out_features * module.in_features - module.nnz) * element
        else:
            sparse = LayerMemory(name, params, 0, params, slots * params)
            dense_params = params
        rows.append((sparse, LayerMemory(name, dense_params, 0, dense_params, slots * dense_params)))
    return rows


def total_memory(model: nn.Module, optimizer: str = "adam") -> tuple[int, int]:
    """``(sparse_total_bytes, dense_total_bytes)`` of weights + structure + grads + optimizer state."""
    rows = layer_memory(model, optimizer)
    return sum(s.total for s, _ in rows), sum(d.total for _, d in rows)


def format_memory_table(rows: list[tuple[LayerMemory, LayerMemory]]) -> str:
    """Markdown table of ``layer_memory`` rows plus a total line, in MiB."""
    mib = 2**20
    lines = ["| layer | sparse weights | structure | grads | optimizer | sparse total | dense total | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for sparse, dense in rows + [(_sum("total", [s for s, _ in rows]), _sum("total", [d for _, d in rows]))]:
        lines.append(f"| {sparse.name or '(root)'} | {sparse.weights / mib:.3f} | {sparse.structure / mib:.3f} | "
                     f"{sparse.grads / mib:.3f} | {sparse.optimizer / mib:.3f} | {sparse.total / mib:.3f} | "
                     f"{dense.total / mib:.3f} | {sparse.total / max(dense.total, 1):.2%} |")
    return "\n".join(lines)


def _sum(name: str, rows: list[LayerMemory]) -> LayerMemory:
    return LayerMemory(name, *(sum(getattr(r, f) for r in rows) for f in ("weights", "structure", "grads", "optimizer")))
