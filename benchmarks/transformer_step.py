"""Training-step time and bytes of the paper-size IWSLT14 Transformer, dense vs sparse, in one process.

Model: 6+6 layers, d_model 512, 8 heads, FFN 2048, joint vocabulary 10,000 (the CHTss paper's Table 5). One step =
forward, label-smoothed cross-entropy, backward, Adam step, on a batch of ``batch`` sentences of
``length`` source and ``length`` target tokens (default 16 × 32 + 16 × 32 = 1,024 tokens). Sparse
layers get an Erdős–Rényi topology at the given sparsity (the topology kind does not change the cost).

Bytes are counted tensor bytes (``sparsenet.sparse.layer_memory``): weights (+ indices and CSR caches
for sparse layers), gradients and Adam's two moments, for the sparse linear layers alone and for the
whole model (embeddings, layer norms and generator stay dense). On CUDA the table adds the peak of
``torch.cuda.max_memory_allocated`` over the timed steps.

With ``--profile``, each model's step is also run under ``torch.profiler`` and the ops taking the most CPU
time (their self time, each microsecond counted once) are listed with their share of the step.

    python -m benchmarks.transformer_step [--sparsities 0 0.9 0.95 0.99] [--repeats 10] [--device cpu] [--profile]
"""
import argparse
from dataclasses import dataclass

import torch
from torch import nn

from sparsenet.models import Transformer
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear, layer_memory
from sparsenet.experiments.timing import machine_line, median_ms
from sparsenet.train.device import resolve_device
from sparsenet.experiments.training_memory import (PAPER_IWSLT, build_transformer, make_optimizer,
                                                   random_batch, train_step)

SPARSITIES = [0.0, 0.9, 0.95, 0.99]


@dataclass(frozen=True)
class StepRow:
    """One model's step time (median ms) and bytes; ``linear_*``: the attention/FFN projections only,
    ``linear_bytes`` their weights + grads + Adam, ``linear_structure_bytes`` their indices + CSR caches."""
    sparsity: float
    step_ms: float
    linear_bytes: int
    linear_structure_bytes: int
    dense_linear_bytes: int
    model_bytes: int
    dense_model_bytes: int
    cuda_peak_bytes: int | None


def _bytes(model: Transformer) -> tuple[int, int, int, int, int]:
    rows = layer_memory(model, "adam")
    linear = [(s, d) for (s, d), projection in zip(rows, _projections(model)) if projection]
    return (sum(s.total - s.structure for s, _ in linear), sum(s.structure for s, _ in linear),
            sum(d.total for _, d in linear), sum(s.total for s, _ in rows), sum(d.total for _, d in rows))


def _projections(model: Transformer) -> list[bool]:
    """Per module with own parameters (``layer_memory``'s order): is it an attention/FFN projection?"""
    return [isinstance(module, (SparseLinear, nn.Linear)) and name != "generator"
            for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))]


def measure(sparsity: float, repeats: int = 10, warmup: int = 3, batch: int = 16, length: int = 32,
            device: str = "cpu", **sizes) -> StepRow:
    """Median step time and byte counts of one model."""
    model = build_transformer(sparsity, device=device, **sizes).train()
    optimizer, _ = make_optimizer(model)
    data = random_batch(model, batch, length, device=device)
    train_step(model, optimizer, data)  # creates gradients, Adam state and CSR caches before counting
    linear, structure, dense_linear, total, dense_total = _bytes(model)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    ms = median_ms(lambda: train_step(model, optimizer, data), repeats, warmup, device)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return StepRow(sparsity, ms, linear, structure, dense_linear, total, dense_total, peak)


def top_ops(sparsity: float, steps: int = 3, top: int = 8, batch: int = 16, length: int = 32, **sizes
            ) -> list[tuple[str, float]]:
    """The ``top`` ops by self CPU time over ``steps`` profiled training steps, with their share of it."""
    model = build_transformer(sparsity, **sizes).train()
    optimizer, _ = make_optimizer(model)
    data = random_batch(model, batch, length)
    train_step(model, optimizer, data)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            train_step(model, optimizer, data)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [(e.key, e.self_cpu_time_total / total) for e in events[:top]]


def format_table(rows: list[StepRow]) -> str:
    """Markdown: step ms, speed-up vs the dense row, and MiB (sparse vs dense twin) of the projections
    (w+g+Adam, then with indices and CSR caches added) and of the whole model (everything counted)."""
    mib = 2**20
    dense_ms = next((r.step_ms for r in rows if r.sparsity == 0), None)
    cuda = any(r.cuda_peak_bytes is not None for r in rows)
    lines = ["| sparsity | step ms | dense/sparse time | projections w+g+Adam MiB | of dense | + indices, CSR MiB "
             "| of dense | whole model MiB | of dense |" + (" CUDA peak MiB |" if cuda else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if cuda else "")]
    for r in rows:
        speed = f"{dense_ms / r.step_ms:.2f}×" if dense_ms else "–"
        with_structure = r.linear_bytes + r.linear_structure_bytes
        line = (f"| {r.sparsity:g} | {r.step_ms:.0f} | {speed} | {r.linear_bytes / mib:.1f} | "
                f"{r.linear_bytes / r.dense_linear_bytes:.1%} | {with_structure / mib:.1f} | "
                f"{with_structure / r.dense_linear_bytes:.1%} | {r.model_bytes / mib:.1f} | "
                f"{r.model_bytes / r.dense_model_bytes:.1%} |")
        lines.append(line + (f" {r.cuda_peak_bytes / mib:.0f} |" if cuda else ""))
    return "\n".join(lines)


def run(sparsities=SPARSITIES, repeats: int = 10, warmup: int = 3, batch: int = 16, length: int = 32,
        device: str = "cpu", progress=iter, **sizes) -> str:
    rows = [measure(s, repeats, warmup, batch, length, device, **sizes) for s in progress(sparsities)]
    header = (f"Transformer {({**PAPER_IWSLT, **sizes})}, batch {batch}×{length}+{batch}×{length} tokens, "
              f"{device}, {machine_line(device)}")
    return header + "\n\n" + format_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsities", type=float, nargs="+", default=SPARSITIES)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--profile", action="store_true", help="also list each model's costliest ops (CPU)")
    args = parser.parse_args()
    try:
        args.device = str(resolve_device(args.device))
    except ValueError as error:
        parser.error(str(error))
    tune_cpu_allocator()
    print(run(args.sparsities, args.repeats, args.warmup, args.batch, args.length, args.device))
    if args.profile:
        for sparsity in args.sparsities:
            ops = top_ops(sparsity, batch=args.batch, length=args.length)
            print(f"\nsparsity {sparsity:g}, CPU self time: " + ", ".join(f"{name} {share:.0%}" for name, share in ops))


if __name__ == "__main__":
    main()
