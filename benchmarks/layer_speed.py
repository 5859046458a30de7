"""Forward+backward time and training memory of one layer: dense vs dense+mask vs SparseLinear.

dense:      ``nn.Linear``.
dense+mask: ``nn.Linear`` whose weight is multiplied by a 0/1 mask in forward (what published DST
            code does); its memory adds the mask.
sparse:     ``SparseLinear``.
Memory = weights + gradients + Adam moments (+ mask / indices and CSR caches), counted tensor bytes.
Input ``(batch, in)`` row-major with ``requires_grad`` (the costliest layout for the sparse layer: it
transposes the input and the input gradient; chained sparse layers skip both). With ``profile`` the
sparse layer's step time is split, by timing, into products (the kernel's three products alone on operands
already laid out: ``forward_product``, ``input_grad_product``, ``values_grad_product``, including the
``values[perm]`` gather that builds Wᵀ's CSR for the input gradient), copies (what the
row-major layout costs: the step's time minus the same step on a feature-major input and output gradient,
the layout the kernel reads) and bookkeeping (the rest of the feature-major step: autograd, tensor
construction, the bias sum). A feature-major input always takes the kernel's unblocked path, so where the
row-major step goes in batch blocks (1,024 rows here, operands above 2 MiB) the split compares the blocked
row-major step with an unblocked feature-major one: its products are the unblocked ones, and its copies
understate what the blocked step copies by the time blocking saves. Not ``torch.profiler``: under it, this build's transposing copies run ~5x
slower than without it (x.t().contiguous() of a 1024x2048 matrix, 2 threads: 1.0 ms plain, 5.2 ms
profiled), which made copies look like 35-84% of the step.

    python -m benchmarks.layer_speed [--repeats 20] [--profile]     (or: python cli.py bench [--profile])
"""
import argparse

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.timing import cpu_flags, cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear, total_memory
from sparsenet.sparse.functional import forward_product, input_grad_product, values_grad_product

SHAPES = [  # (out_features, in_features, rows of input)
    (1568, 784, 32),
    (1568, 1568, 32),
    (2048, 512, 1024),
    (512, 2048, 1024),
]
SPARSITIES = [0.9, 0.95, 0.99, 0.999]


def _step(forward, x, params, grad=None):
    """One forward+backward of ``forward`` on ``x`` with output gradient ``grad`` (default: ones, row-major)."""
    grad = torch.ones(x.shape[0], forward(x).shape[1]) if grad is None else grad

    def step():
        for p in params:
            p.grad = None
        x.grad = None
        forward(x).backward(grad)
    return step


def _step_ms(forward, x, params, repeats, warmup):
    return median_ms(_step(forward, x, params), repeats, warmup)


def time_shares(sparse: SparseLinear, x: torch.Tensor, repeats: int, warmup: int) -> dict:
    """Shares of the sparse layer's forward+backward step on the row-major ``x (rows, in)`` by timing:
    ``{"products", "copies", "bookkeeping"}``, summing to 1 (a part measured below 0 counts as 0).
    ``copies`` = step time minus the step on a feature-major input and output gradient (no layout change);
    ``products`` = the kernel's three products on operands laid out as it wants them;
    ``bookkeeping`` = the feature-major step minus the products."""
    params = list(sparse.parameters())
    row_ms = _step_ms(sparse, x, params, repeats, warmup)
    x_fm = x.detach().t().contiguous().t().requires_grad_()  # same values, feature-major strides
    grad_fm = torch.ones(sparse.out_features, x.shape[0]).t()
    feature_major_ms = median_ms(_step(sparse, x_fm, params, grad_fm), repeats, warmup)
    values, x_t = sparse.values.detach(), x_fm.detach().t()
    grad_y_t, cache = grad_fm.t(), sparse.cache
    bias = None if sparse.bias is None else sparse.bias.detach()
    products_ms = median_ms(lambda: (forward_product(cache, values, x_t, bias),
                                     input_grad_product(cache, values, grad_y_t),
                                     values_grad_product(cache, values, grad_y_t, x_t)), repeats, warmup)
    parts = {"products": products_ms, "copies": max(row_ms - feature_major_ms, 0.0),
             "bookkeeping": max(feature_major_ms - products_ms, 0.0)}
    overall = sum(parts.values()) or 1.0
    return {kind: value / overall for kind, value in parts.items()}


def measure(out_f: int, in_f: int, rows: int, sparsities=SPARSITIES, repeats: int = 20, warmup: int = 5,
            seed: int = 0, profile: bool = False) -> list[dict]:
    """One row per sparsity: times in ms and memory in bytes for the three layers (and with ``profile`` the
    sparse layer's ``time_shares``)."""
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
                           **({"shares": time_shares(sparse, x, repeats, warmup)} if profile else {})))
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
