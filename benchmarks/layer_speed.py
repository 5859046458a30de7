"""Forward+backward time and training memory of one layer: dense vs dense+mask vs SparseLinear.

dense:      ``nn.Linear``.
dense+mask: ``nn.Linear`` whose weight is multiplied by a 0/1 mask in forward (what published DST
            code does); its memory adds the mask.
sparse:     ``SparseLinear``.
Memory = weights + gradients + Adam moments (+ mask / indices and CSR caches), counted tensor bytes.
Input ``(batch, in)`` row-major with ``requires_grad`` (the costliest layout for the sparse layer: it
transposes the input and the input gradient; chained sparse layers skip both). With ``profile`` the
sparse layer's step is also run under ``torch.profiler`` and its CPU time split into products (the CSR
and sampled products, dense GEMMs), copies (layout changes: copies, clones, gathers of values into the
transposed order) and bookkeeping (everything else: tensor construction, fills, sums, autograd).

    python -m benchmarks.layer_speed [--repeats 20] [--profile]     (or: python cli.py bench [--profile])
"""
import argparse

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.timing import cpu_flags, cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear, total_memory

SHAPES = [  # (out_features, in_features, rows of input)
    (1568, 784, 32),
    (1568, 1568, 32),
    (2048, 512, 1024),
    (512, 2048, 1024),
]
SPARSITIES = [0.9, 0.95, 0.99, 0.999]


def _step(forward, x, params):
    grad = torch.ones(x.shape[0], forward(x).shape[1])

    def step():
        for p in params:
            p.grad = None
        x.grad = None
        forward(x).backward(grad)
    return step


def _step_ms(forward, x, params, repeats, warmup):
    return median_ms(_step(forward, x, params), repeats, warmup)


PRODUCTS = ("addmm", "mm", "bmm", "matmul", "sampled_addmm", "_sparse_csr_mm", "_sparse_mm")
COPIES = ("copy_", "clone", "contiguous", "_to_copy", "index", "index_select", "gather", "take")


def op_kind(name: str) -> str:
    """``products``, ``copies`` or ``bookkeeping`` for a profiler op name such as ``aten::addmm``."""
    op = name.split("::")[-1]
    if op in PRODUCTS or "sampled_addmm" in op:
        return "products"
    return "copies" if op in COPIES else "bookkeeping"


def profile_shares(forward, x, params, steps: int = 5) -> dict:
    """Shares of the CPU time of ``steps`` forward+backward steps by ``op_kind`` (ops' self time, so each
    microsecond counts once): ``{"products", "copies", "bookkeeping"}``, summing to 1."""
    step = _step(forward, x, params)
    step()  # warm-up outside the profile
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    totals = dict.fromkeys(("products", "copies", "bookkeeping"), 0.0)
    for event in profiler.key_averages():
        totals[op_kind(event.key)] += event.self_cpu_time_total
    overall = sum(totals.values()) or 1.0
    return {kind: value / overall for kind, value in totals.items()}


def measure(out_f: int, in_f: int, rows: int, sparsities=SPARSITIES, repeats: int = 20, warmup: int = 5,
            seed: int = 0, profile: bool = False) -> list[dict]:
    """One row per sparsity: times in ms and memory in bytes for the three layers (and with ``profile`` the
    sparse layer's ``profile_shares``)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, in_f, generator=generator, requires_grad=True)
    dense = nn.Linear(in_f, out_f)
    dense_ms = _step_ms(dense, x, list(dense.parameters()), repeats, warmup)
    dense_bytes = total_memory(dense, "adam")[1]
    result = []
    for sparsity in sparsities:
        sparse = SparseLinear(in_f, out_f, density=1 - sparsity, generator=generator)
        mask = sparse.to_dense() != 0
        masked_ms = _step_ms(lambda inp: F.linear(inp, dense.weight * mask, dense.bias), x,
                             list(dense.parameters()), repeats, warmup)
        sparse_ms = _step_ms(sparse, x, list(sparse.parameters()), repeats, warmup)
        sparse_bytes = total_memory(sparse, "adam")[0]
        result.append(dict(shape=f"{out_f}x{in_f}", rows=rows, sparsity=sparsity, nnz=sparse.nnz,
                           dense_ms=dense_ms, masked_ms=masked_ms, sparse_ms=sparse_ms,
                           dense_bytes=dense_bytes, masked_bytes=dense_bytes + mask.numel(), sparse_bytes=sparse_bytes,
                           **({"shares": profile_shares(sparse, x, list(sparse.parameters()))} if profile else {})))
    return result


def format_table(rows: list[dict]) -> str:
    """Markdown table with the ratio columns (speed-up of sparse, memory share of sparse)."""
    profiled = bool(rows) and "shares" in rows[0]
    lines = ["| out×in | batch | sparsity | dense ms | dense+mask ms | sparse ms | dense/sparse | mask/sparse "
             "| dense MiB | dense+mask MiB | sparse MiB | sparse/dense mem |"
             + (" sparse: products | copies | bookkeeping |" if profiled else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if profiled else "")]
    mib = 2**20
    for r in rows:
        shares = r.get("shares")
        lines.append(f"| {r['shape']} | {r['rows']} | {r['sparsity']:.3f} | {r['dense_ms']:.3f} | "
                     f"{r['masked_ms']:.3f} | {r['sparse_ms']:.3f} | {r['dense_ms'] / r['sparse_ms']:.1f}× | "
                     f"{r['masked_ms'] / r['sparse_ms']:.1f}× | {r['dense_bytes'] / mib:.2f} | "
                     f"{r['masked_bytes'] / mib:.2f} | {r['sparse_bytes'] / mib:.3f} | "
                     f"{r['sparse_bytes'] / r['dense_bytes']:.2%} |"
                     + (f" {shares['products']:.0%} | {shares['copies']:.0%} | {shares['bookkeeping']:.0%} |"
                        if shares else ""))
    return "\n".join(lines)


def machine() -> str:
    """The CPU model, its vector extensions, threads and the torch version: the line printed with a table."""
    return f"{cpu_model()} ({cpu_flags()}), {torch.get_num_threads()} threads, torch {torch.__version__}"


def run(repeats: int = 20, warmup: int = 5, shapes=SHAPES, sparsities=SPARSITIES, progress=None,
        profile: bool = False) -> str:
    """Measure every shape and sparsity; return the markdown table preceded by the machine line."""
    rows = []
    for out_f, in_f, n in (progress(shapes) if progress else shapes):
        rows.extend(measure(out_f, in_f, n, sparsities, repeats, warmup, profile=profile))
    return f"Machine: {machine()}; median of {repeats} forward+backward steps after {warmup} warm-up.\n\n" \
           + format_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="split the sparse layer's time by op kind")
    args = parser.parse_args()
    tune_cpu_allocator()
    print(run(args.repeats, args.warmup, profile=args.profile))
