"""The memory an MLP run will take, planned from its sizes before the model exists, and the check that it fits.

Counted exactly (the same tensors ``sparsenet.sparse.layer_memory`` counts once they exist): values, sparse
structure (CSR ``crow``/``col`` and the transposed cache ``crow_t``/``col_t``/``perm``, int32 while sizes fit),
gradients, optimizer state, the data set's tensors. Estimated: activations (the training batch's saved
tensors and gradients, an evaluation chunk's) and the topology update's workspace (the link-prediction score
blocks' budget, the layer-wide pair lists, wedges or path factors of CH link prediction, and per-link
temporaries, for the layer that needs most)."""
import os
from dataclasses import dataclass, fields

from ..evolution.linkpred import DEFAULT_BUDGET, planned_structure_bytes
from ..sparse.csr import index_dtype
from ..sparse.keys import link_count

GIB = 2**30
FLOAT = 4  # float32 bytes
ACTIVATION_COPIES = 4  # per hidden neuron and training image: pre-activation, activation, their gradients
EVALUATION_COPIES = 3  # per neuron and evaluated image: a layer's input, output and transposed copy
UPDATE_BYTES_PER_LINK = 64  # engine temporaries per link of the updated layer: 56 measured (SET, 333k x 333k)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes by kind; ``total`` is their sum."""
    values: int
    structure: int
    gradients: int
    optimizer: int
    data: int
    activations: int
    update: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        """One line: each kind and the total."""
        parts = ", ".join(f"{f.name} {_size(getattr(self, f.name))}" for f in fields(self))
        return f"memory plan: {parts}; total {_size(self.total)}"


def _size(count: int) -> str:
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / 2**20:.1f} MiB"


def structure_bytes(out_features: int, in_features: int, nnz: int) -> int:
    """Bytes of one sparse layer's CSR storage and transposed cache."""
    size = 8 if index_dtype(nnz, out_features, in_features).itemsize == 8 else 4
    return size * (out_features + 1 + in_features + 1 + 3 * nnz)


def plan_mlp(sizes: tuple, densities: list[float], batch_size: int, evaluation_chunk: int, optimizer_slots: int,
             data_bytes: int, dense: bool = False, link_prediction: str | None = None) -> MemoryPlan:
    """Plan of the MLP ``sizes = (inputs, *hidden, classes)`` whose hidden layers have ``densities`` (the
    densest the run reaches; ignored when ``dense``), the output layer dense; ``optimizer_slots`` state
    tensors per parameter (SGD with momentum: 1); ``link_prediction``: the CH variant of the regrowth
    ("CH3-L3p", "CH3-L3n", "CH2-L3n"), ``None`` for random or gradient regrowth."""
    shapes = list(zip(sizes[:-2], sizes[1:-1]))
    links = [a * b if dense else link_count(b, a, d) for (a, b), d in zip(shapes, densities)]
    parameters = sum(links) + sum(sizes[1:-1]) + sizes[-2] * sizes[-1] + sizes[-1]
    structure = 0 if dense else sum(structure_bytes(b, a, n) for (a, b), n in zip(shapes, links))
    hidden = sum(sizes[1:-1])
    activations = max(ACTIVATION_COPIES * batch_size * hidden,
                      EVALUATION_COPIES * evaluation_chunk * max(sizes[1:-1])) * FLOAT
    update = 0 if dense else DEFAULT_BUDGET + max(
        UPDATE_BYTES_PER_LINK * n + (planned_structure_bytes((b, a), n, link_prediction) if link_prediction else 0)
        for (a, b), n in zip(shapes, links))
    return MemoryPlan(values=FLOAT * parameters, structure=structure, gradients=FLOAT * parameters,
                      optimizer=optimizer_slots * FLOAT * parameters, data=data_bytes, activations=activations,
                      update=update)


def available_memory() -> int:
    """Bytes the machine can give a new process now: ``MemAvailable`` of /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_plan(plan: MemoryPlan, limit_gib: float | None, processes: int = 1) -> None:
    """Raise a one-line ``ValueError`` when ``plan`` exceeds ``limit_gib`` (default: the available memory
    shared by the run's ``processes`` on this machine, torchrun's local ranks)."""
    limit = available_memory() / processes if limit_gib is None else limit_gib * GIB
    if plan.total > limit:
        source = ("of --memory_limit" if limit_gib is not None else "available on this machine" if processes == 1
                  else f"available to each of its {processes} processes on this machine")
        raise ValueError(f"this run needs about {_size(plan.total)} ({plan.describe()}), more than the "
                         f"{_size(limit)} {source}; use fewer --hidden neurons, --links_per_neuron or --batch_size")
