"""Memory of real training steps, dense vs sparse: parameters, gradients, optimizer state, sparse structure,
activation peak and total peak, each model measured alone in a fresh process.

Models are the recipes' (the paper's MLP of ``classify``, the Transformer of ``translate``) at each data set's
sizes, fed random inputs (no data needed). Sparsity 0 is the dense model (``nn.Linear``); any other sparsity
gives ``SparseLinear`` layers with an Erdős–Rényi topology. Optimizers are the recipes': SGD with momentum
0.9 for the MLP, Adam (β 0.9, 0.998) for the Transformer. Precision fp32, or bf16: the forward and the loss
under bf16 autocast, with float32 master values, gradients and optimizer state (so the counted bytes are
fp32's; the activations shrink).

Parameter, gradient, optimizer-state and structure (indices + CSR caches) bytes are counted from the live
tensors after training and checked against ``sparsenet.sparse.layer_memory``. The peak is measured over the
training steps, above the process's state after imports and a warm-up with a tiny model (one-time runtime
set-up is not the model's): ``torch.cuda.max_memory_allocated`` on CUDA, the peak resident set size on CPU
(``VmHWM``, reset through ``/proc/self/clear_refs``; ``ru_maxrss`` where /proc is absent). Activation peak =
measured peak − counted bytes, floored at 0; on CPU an estimate (it includes allocator slack and kernel
workspaces). Total peak = counted + activation peak.

Beside it, from the allocator rather than the OS: one more step with the gradients set to None first,
measured by ``step_allocated_peak`` (``torch.cuda.max_memory_allocated`` on CUDA; on CPU its allocations and
frees read from ``torch.profiler``'s memory events in time order). Its peak (the step's transient bytes:
activations, gradients, temporaries) is what the allocator held at most for tensors the step made, and the
allocated peak = parameters + optimizer state + structure + that. On CPU the RSS peak can exceed it by what
glibc keeps of freed blocks (``tune_cpu()`` keeps them on purpose) and by fragmentation.

    run_memory("transformer", "iwslt14", [0.9, 0.99], "cpu", steps=20)
"""
import contextlib
import ctypes
import ctypes.util
import gc
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from ..data.translation import CORPORA
from ..data.vision import DATASETS as VISION_DATASETS
from ..data.vision import image_shape
from ..models import MLP, Transformer
from ..runtime import peak_rss_bytes, tune_cpu_allocator
from ..sparse import SparseLinear, layer_memory
from ..topology import init_sparse_model
from ..train.classify import PRESETS as CLASSIFY_PRESETS
from ..train.classify import ClassifyConfig
from ..train.translate import PRESETS as TRANSLATE_PRESETS
from ..train.translate import TranslateConfig
from ..train.device import resolve_device
from .timing import machine_line

MIB = 2**20
RSS = "peak RSS"  # MemoryRow.source of CPU measurements, whose activation peak is an estimate
MAX_LENGTH = 512  # the Transformer's default position table


def mlp_sizes(dataset: str) -> dict:
    """The paper MLP for a vision data set: 784 inputs (64 for digits' 8×8 images), the set's classes and
    the hidden layers of ``classify`` (its preset, else 1568-1568-1568)."""
    in_features, classes = image_shape(dataset)
    hidden = CLASSIFY_PRESETS.get(dataset, {}).get("hidden", ClassifyConfig.hidden)
    return dict(in_features=in_features, hidden=tuple(hidden), classes=classes)


def transformer_sizes(dataset: str) -> dict:
    """The paper Transformer for a corpus: ``translate``'s defaults and paper preset, the corpus's joint vocabulary."""
    fields = ("d_model", "heads", "layers", "d_ff")
    config = {**{f: getattr(TranslateConfig, f) for f in fields}, **TRANSLATE_PRESETS.get((dataset, "paper"), {})}
    return dict(vocab=CORPORA[dataset].vocab_size, **{f: config[f] for f in fields})


PAPER_MLP = mlp_sizes("mnist")
PAPER_IWSLT = transformer_sizes("iwslt14")
MODELS = {  # model -> (data sets, their sizes, default batch: sentences for the Transformer)
    "mlp": (VISION_DATASETS, mlp_sizes, ClassifyConfig.batch_size),
    "transformer": (tuple(CORPORA), transformer_sizes, 16),
}


def build_mlp(sparsity: float, seed: int = 0, device: str = "cpu", **sizes) -> MLP:
    """The MLP of ``sizes`` (default ``PAPER_MLP``); dense hidden layers when ``sparsity`` is 0."""
    sizes = {**PAPER_MLP, **sizes}
    generator = torch.Generator().manual_seed(seed)
    model = MLP(sizes["in_features"], tuple(sizes["hidden"]), sizes["classes"], density=1.0 - sparsity,
                dense=sparsity == 0, generator=generator)
    return _er_topology(model, sparsity, generator).to(device)


def build_transformer(sparsity: float, seed: int = 0, device: str = "cpu", **sizes) -> Transformer:
    """The Transformer of ``sizes`` (default ``PAPER_IWSLT``); dense when ``sparsity`` is 0."""
    sizes = {**PAPER_IWSLT, **sizes}
    generator = torch.Generator().manual_seed(seed)
    density = None if sparsity == 0 else 1.0 - sparsity
    model = Transformer(sizes["vocab"], sizes["d_model"], sizes["heads"], sizes["layers"], sizes["d_ff"],
                        generator=generator, density=density, tie_embeddings="source_target")  # the recipe's default
    return _er_topology(model, sparsity, generator).to(device)


def _er_topology(model: nn.Module, sparsity: float, generator: torch.Generator) -> nn.Module:
    if sparsity != 0:
        init_sparse_model(model, "er", 1.0 - sparsity, "xavier", generator=generator)
    return model


BUILDERS = {"mlp": build_mlp, "transformer": build_transformer}


def build(model: str, sparsity: float, seed: int = 0, device: str = "cpu", **sizes) -> nn.Module:
    """``build_mlp`` or ``build_transformer`` by name."""
    return BUILDERS[model](sparsity, seed, device, **sizes)


def random_batch(model: nn.Module, batch: int, length: int = 32, seed: int = 0, device: str = "cpu") -> tuple:
    """Random training batch for ``model``. Transformer: ``(src, tgt_in, tgt_out)``, each ``(batch, length)``
    int64 ids in [4, vocab) (no pad/bos/eos). MLP: ``(x (batch, in) float32 N(0, 1), y (batch,) int64 classes)``."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, Transformer):
        vocab = model.source_embedding.num_embeddings
        src, tgt = (torch.randint(4, vocab, (batch, length + i), generator=generator) for i in (0, 1))
        return src.to(device), tgt[:, :-1].to(device), tgt[:, 1:].to(device)
    x = torch.randn(batch, model.hidden[0].in_features, generator=generator)
    y = torch.randint(model.output.out_features, (batch,), generator=generator)
    return x.to(device), y.to(device)


def batch_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """Mean cross-entropy of ``random_batch``'s batch; label smoothing 0.1 for the Transformer."""
    if isinstance(model, Transformer):
        src, tgt_in, tgt_out = batch
        logits = model(src, tgt_in)
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), label_smoothing=0.1)
    x, y = batch
    return F.cross_entropy(model(x), y)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # the autocast dtype of each --precision


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple, precision: str = "fp32") -> float:
    """One optimizer step (gradients set to None first), the forward and loss under bf16 autocast for
    ``precision`` bf16 (float32 master values, gradients and optimizer state); returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    return _forward_backward_update(model, optimizer, batch, precision)


def _forward_backward_update(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple,
                             precision: str = "fp32") -> float:
    dtype = PRECISIONS[precision]
    with torch.autocast(batch[0].device.type, dtype=dtype) if dtype else contextlib.nullcontext():
        loss = batch_loss(model, batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def make_optimizer(model: nn.Module) -> tuple[torch.optim.Optimizer, str]:
    """The recipe's optimizer and its ``layer_memory`` name: Adam (β 0.9, 0.998) for the Transformer, SGD
    with momentum 0.9 and weight decay 5e-4 for the MLP (learning rates do not change the bytes)."""
    if isinstance(model, Transformer):
        return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.998)), "adam"
    config = ClassifyConfig()
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay), "momentum"


@dataclass(frozen=True)
class TensorBytes:
    """Bytes held between steps. ``optimizer`` includes Adam's scalar step counters; ``structure``: sparse
    layers' indices and CSR caches."""
    params: int
    grads: int
    optimizer: int
    structure: int


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]


def count_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> TensorBytes:
    """Bytes of the live tensors: parameters, ``p.grad``, ``optimizer.state`` and sparse structure."""
    parameters = list(model.parameters())
    sparse = [m for m in model.modules() if isinstance(m, SparseLinear)]
    return TensorBytes(sum(_nbytes(p) for p in parameters),
                       sum(_nbytes(p.grad) for p in parameters if p.grad is not None),
                       sum(_nbytes(t) for t in _state_tensors(optimizer)),
                       sum(m.memory_bytes()["indices"] + m.cache.nbytes() for m in sparse))


def check_counts(counted: TensorBytes, model: nn.Module, optimizer: torch.optim.Optimizer, slots: str) -> None:
    """``RuntimeError`` unless ``counted`` equals ``layer_memory(model, slots)`` (plus the optimizer's scalar
    state, which ``layer_memory`` leaves out)."""
    rows = [sparse for sparse, _ in layer_memory(model, slots)]
    scalars = sum(_nbytes(t) for t in _state_tensors(optimizer) if t.dim() == 0)
    expected = TensorBytes(sum(r.weights for r in rows), sum(r.grads for r in rows),
                           sum(r.optimizer for r in rows) + scalars, sum(r.structure for r in rows))
    if counted != expected:
        raise RuntimeError(f"counted tensor bytes {counted} disagree with layer_memory's {expected}")


def _proc_status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in bytes; None where /proc is absent."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024


def reset_peak_rss() -> bool:
    """Set the process's peak RSS (``VmHWM``) to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def release_free_heap() -> bool:
    """Collect garbage and return free heap pages to the OS (glibc's ``malloc_trim``), so that RSS is the
    live bytes; False (after collecting) where ``malloc_trim`` is not available."""
    gc.collect()
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0))
    except (OSError, AttributeError, TypeError):
        return False


class PeakMeter:
    """Peak bytes above the process's state when constructed: CUDA's allocated memory on a CUDA device,
    else the resident set size (after ``release_free_heap``)."""

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.source = "CUDA max_memory_allocated" if self.cuda else RSS
        if self.cuda:
            self.baseline = torch.cuda.memory_allocated(self.device)
        else:
            release_free_heap()
            self.baseline = _proc_status_bytes("VmRSS") or peak_rss_bytes()

    def reset(self) -> None:
        """Forget earlier peaks (on CPU only where /proc/self/clear_refs works) and freed bytes."""
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            release_free_heap()
            reset_peak_rss()

    def peak(self) -> int:
        """Peak bytes since the last ``reset``, minus the baseline."""
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) - self.baseline
        return (_proc_status_bytes("VmHWM") or peak_rss_bytes()) - self.baseline


def step_allocated_peak(step, device: str = "cpu") -> int:
    """Peak bytes the allocator held, above what it held before, while ``step()`` ran: on CUDA from
    ``torch.cuda.max_memory_allocated``; on CPU the running sum, in time order, of the allocations and frees
    ``torch.profiler`` reports (its private ``kineto_results``: the public tables aggregate them away).

    It is the step's own bytes only if the step frees nothing made before it: give it a step whose
    gradients were set to None beforehand. A block made before and freed inside counts as a negative, so
    the result is then a lower bound. On CPU the profiler keeps its table of block sizes from one profile
    to the next: a block made during an earlier call in the same process and freed during this one is
    reported as a free too, so call it once per process (``measure`` runs in a fresh one)."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = [e for e in profiler.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type().name.lower() == kind]
    events.sort(key=lambda e: e.start_ns())  # stable: same-tick events stay in the order they were recorded
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


@dataclass(frozen=True)
class MemoryRow:
    """One model's bytes (``TensorBytes``' fields, then the measurements). ``measured_peak``: the peak over
    the training steps above the process after imports and ``warm_up``, from ``source``; ``step_seconds``:
    mean wall time of a step (noisy on a shared machine); ``step_allocated``: ``step_allocated_peak`` of one
    more step."""
    sparsity: float
    params: int
    grads: int
    optimizer: int
    structure: int
    measured_peak: int
    source: str
    step_seconds: float
    step_allocated: int

    @property
    def allocated_peak(self) -> int:
        """Parameters, optimizer state and structure, plus ``step_allocated``: the allocator's peak in a step."""
        return self.params + self.optimizer + self.structure + self.step_allocated

    @property
    def counted(self) -> int:
        return self.params + self.grads + self.optimizer + self.structure

    @property
    def activation(self) -> int:
        """Measured peak beyond the counted tensors, floored at 0."""
        return max(self.measured_peak - self.counted, 0)

    @property
    def total_peak(self) -> int:
        return self.counted + self.activation


WARMUP_SIZES = {"mlp": dict(in_features=8, hidden=(16, 16), classes=3),
                "transformer": dict(vocab=50, d_model=16, heads=2, layers=1, d_ff=32)}


def warm_up(model: str, sparsity: float, device: str = "cpu", precision: str = "fp32") -> None:
    """Two training steps of a tiny model of the same kind and sparsity, then dropped: thread pools,
    kernel code and library caches (cuBLAS workspaces) are set up once per process, not per model."""
    network = build(model, sparsity, device=device, **WARMUP_SIZES[model]).train()
    optimizer, _ = make_optimizer(network)
    data = random_batch(network, 4, 4, device=device)
    for _ in range(2):
        train_step(network, optimizer, data, precision)


def measure(model: str, sparsity: float, steps: int, device: str = "cpu", seed: int = 0, batch: int | None = None,
            length: int = 32, precision: str = "fp32", **sizes) -> MemoryRow:
    """Build one model, train it ``steps`` steps on one random batch, count and measure its memory.

    Run it in a fresh process (``measure_fresh``): the CPU peak is the whole process's. The allocator is
    tuned as ``cli.py`` tunes it for training; the baseline is taken after ``warm_up``, and the peak is
    reset after construction (construction transients are not a training step's).
    """
    tune_cpu_allocator()
    warm_up(model, sparsity, device, precision)
    meter = PeakMeter(device)
    network = build(model, sparsity, seed, device, **sizes).train()
    optimizer, slots = make_optimizer(network)
    data = random_batch(network, batch or MODELS[model][2], length, seed, device)
    meter.reset()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(network, optimizer, data, precision)
    seconds = (time.perf_counter() - start) / steps
    peak = meter.peak()
    optimizer.zero_grad(set_to_none=True)
    step_allocated = step_allocated_peak(lambda: _forward_backward_update(network, optimizer, data, precision),
                                         device)
    counted = count_bytes(network, optimizer)
    check_counts(counted, network, optimizer, slots)
    return MemoryRow(sparsity, counted.params, counted.grads, counted.optimizer, counted.structure, peak,
                     meter.source, seconds, step_allocated)


def measure_fresh(*args, **kwargs) -> MemoryRow:
    """``measure`` in a freshly spawned process (its peak RSS is the model's alone)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args, **kwargs).result()


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_sparsities(sparsities) -> list[float]:
    """0 (the dense reference) first, then the others in the given order without repeats; ``ValueError``
    for a value outside [0, 1). A single number is a list of one."""
    values = [sparsities] if isinstance(sparsities, (int, float)) else list(sparsities)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {value!r}")
    return list(dict.fromkeys([0.0, *map(float, values)]))


def model_sizes(model: str, dataset: str, overrides: dict) -> dict:
    """The data set's sizes with ``overrides``; ``ValueError`` for an unknown model, data set or size name,
    or a size that is not a positive integer (``hidden``: one or more)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {sorted(MODELS)}")
    datasets, sizes_of, _ = MODELS[model]
    if dataset not in datasets:
        raise ValueError(f"unknown dataset {dataset!r} for {model}; choose from {list(datasets)}")
    sizes = sizes_of(dataset)
    unknown = set(overrides) - set(sizes)
    if unknown:
        raise ValueError(f"unknown sizes {sorted(unknown)} for {model}; choose from {sorted(sizes)}")
    for name, value in overrides.items():
        if name == "hidden":
            value = tuple(_positive_int("hidden", v) for v in ([value] if isinstance(value, int) else value))
            if not value:
                raise ValueError("hidden must name at least one layer width")
        sizes[name] = value if name == "hidden" else _positive_int(name, value)
    if model == "transformer" and sizes["d_model"] % sizes["heads"]:
        raise ValueError(f"d_model {sizes['d_model']} is not divisible by heads {sizes['heads']}")
    return sizes


def format_report(rows: list[MemoryRow], title: str) -> str:
    """Markdown: ``title``, then per model MiB of params, grads, optimizer state, structure, all counted
    (and its share of the dense row's), activation peak and total peak (and its share of dense)."""
    dense = rows[0]
    estimate = " (estimate)" if dense.source == RSS else ""
    lines = [title, "",
             f"| sparsity | params MiB | grads MiB | optimizer MiB | structure MiB | counted MiB | of dense "
             f"| activation peak MiB{estimate} | total peak MiB | of dense | step transient MiB (allocated) "
             f"| allocated peak MiB | of dense |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.sparsity:g} | {r.params / MIB:.2f} | {r.grads / MIB:.2f} | {r.optimizer / MIB:.2f} | "
                     f"{r.structure / MIB:.2f} | {r.counted / MIB:.2f} | {r.counted / dense.counted:.1%} | "
                     f"{r.activation / MIB:.1f} | {r.total_peak / MIB:.1f} | {r.total_peak / dense.total_peak:.1%} | "
                     f"{r.step_allocated / MIB:.1f} | {r.allocated_peak / MIB:.1f} | "
                     f"{r.allocated_peak / dense.allocated_peak:.1%} |")
    lines += ["", f"Activation peak = measured peak ({dense.source} above the process after imports and a warm-up) "
                  "− counted tensor bytes, floored at 0; total peak = counted + activation peak. Step transient = "
                  "the allocator's peak of the bytes one training step makes (activations, gradients, "
                  "temporaries; gradients None at its start); allocated peak = params + optimizer + structure + "
                  "step transient."]
    return "\n".join(lines)


def write_json(rows: list[MemoryRow], setup: dict, path: Path) -> Path:
    """``setup`` and per model the raw byte numbers (and derived ones) as JSON."""
    dense = rows[0]
    records = [{**asdict(r), "counted": r.counted, "activation": r.activation, "total_peak": r.total_peak,
                "counted_ratio": r.counted / dense.counted, "total_peak_ratio": r.total_peak / dense.total_peak,
                "allocated_peak": r.allocated_peak, "allocated_peak_ratio": r.allocated_peak / dense.allocated_peak}
               for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**setup, "units": "bytes", "rows": records}, indent=2) + "\n")
    return path


def plot_bars(rows: list[MemoryRow], title: str, path: Path) -> Path:
    """Stacked bars (MiB) of params, grads, optimizer, structure and activation per model, each labelled
    with its total peak and its share of the dense model's; saved as PNG."""
    from matplotlib.figure import Figure

    parts = {"params": [r.params for r in rows], "grads": [r.grads for r in rows],
             "optimizer": [r.optimizer for r in rows], "structure": [r.structure for r in rows],
             "activation" + (" (estimate)" if rows[0].source == RSS else ""): [r.activation for r in rows]}
    labels = ["dense" if r.sparsity == 0 else f"{r.sparsity:g}" for r in rows]
    figure = Figure(figsize=(1.6 * len(rows) + 4, 4.5))
    axis = figure.subplots()
    bottom = [0.0] * len(rows)
    for name, values in parts.items():
        mib = [v / MIB for v in values]
        axis.bar(labels, mib, bottom=bottom, label=name)
        bottom = [b + m for b, m in zip(bottom, mib)]
    for x, (top, row) in enumerate(zip(bottom, rows)):
        axis.annotate(f"{top:.0f} MiB\n{row.total_peak / rows[0].total_peak:.0%}", (x, top), ha="center", va="bottom",
                      fontsize=8)
    axis.set_xlabel("sparsity")
    axis.set_ylabel("MiB at the peak of a training step")
    axis.set_title(title, fontsize=9)
    axis.set_ylim(0, max(bottom) * 1.3)
    axis.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def run_memory(model: str, dataset: str, sparsities: list[float], device: str = "cpu", steps: int = 20,
               seed: int = 0, out: str | None = None, batch: int | None = None, length: int = 32,
               precision: str = "fp32", **sizes) -> str:
    """Measure the dense model and the sparse one at each sparsity, each in a fresh process, over ``steps``
    training steps on random data; write ``<out>.json`` and ``<out>.png`` (default
    ``runs/memory/<model>-<dataset>-<cpu|cuda>``, ``-bf16`` appended for bf16) and return the markdown report.

    ``batch``: MLP samples (default 32) or Transformer sentence pairs of ``length`` source and ``length``
    target tokens (default 16 × 32 + 16 × 32). ``sizes`` override the data set's model sizes (MLP:
    ``in_features``, ``hidden``, ``classes``; Transformer: ``vocab``, ``d_model``, ``heads``, ``layers``,
    ``d_ff``). ``precision``: fp32, or bf16 (the forward and loss under bf16 autocast, float32 master values and
    optimizer state). ``device``: auto (CUDA when present), cpu, cuda or cuda:N (``train.device.resolve_device``).
    ``ValueError`` (one line) for bad input, including cuda on a machine without it.
    """
    sizes = model_sizes(model, dataset, sizes)
    sparsities = check_sparsities(sparsities)
    _positive_int("steps", steps)
    batch = _positive_int("batch", MODELS[model][2] if batch is None else batch)
    if _positive_int("length", length) > MAX_LENGTH:
        raise ValueError(f"length must be at most {MAX_LENGTH} (the Transformer's position table), got {length}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose fp32 or bf16")
    device = str(resolve_device(device))
    rows = [measure_fresh(model, s, steps, device, seed, batch, length, precision, **sizes)
            for s in tqdm(sparsities, desc="models", disable=not sys.stderr.isatty())]
    shape = f"{batch}×{length}+{batch}×{length} tokens" if model == "transformer" else f"{batch} samples"
    setting = f"{model} for {dataset}, {steps} {precision} steps on {device}"
    details = f"{', '.join(f'{k} {v}' for k, v in sizes.items())}, batch {shape}"
    machine = machine_line(device)
    suffix = "" if precision == "fp32" else f"-{precision}"
    out = Path(out or f"runs/memory/{model}-{dataset}-{torch.device(device).type}{suffix}")
    setup = dict(model=model, dataset=dataset, device=device, precision=precision, steps=steps, seed=seed,
                 batch=batch, length=length if model == "transformer" else None, sizes=sizes, torch=torch.__version__)
    json_path = write_json(rows, setup, Path(f"{out}.json"))
    png_path = plot_bars(rows, f"{setting}\n{details}", Path(f"{out}.png"))
    report = format_report(rows, f"{setting}: {details}; {machine}")
    return report + f"\n\nWritten: {json_path}, {png_path}"
