"""Which product form should each of the sparse layer's three products use? Median ms of the alternatives
torch offers for a row-major ``(n, in)`` input and a row-major ``(n, out)`` output gradient, one process:

forward     y = x Wᵀ:    (A) W @ xᵀ copied contiguous (the kernel's form; the copy is timed with it),
                         (B) W @ xᵀ as a strided view (the library copies or walks it itself),
                         (C) x @ (Wᵀ as CSR), dense times sparse;
grad input  dx = dy W:   (A) Wᵀ @ dyᵀ contiguous, (B) Wᵀ @ dyᵀ view, (C) dy @ W;
grad values dW on links: (A) sampled_addmm(dyᵀ contiguous, x), the kernel's form, (B) with dyᵀ as a view;
plus the copy of xᵀ alone. The kernel (sparsenet/sparse/functional.py) takes (A) for all three. Measured
on this workplace's 2-core AMD EPYC (2 threads, README's Performance section): the strided forms (B) of
the two CSR products land within ±12% of (A) copy included, either way between runs (the library pays
for the strided walk what the copy cost), and (A)'s copy of xᵀ is the operand the grad-values product
needs anyway, whose strided form is 1.1-2.6x slower; dense-times-sparse (C) is 2-25x slower.

    python -m benchmarks.product_forms [--sparsities 0.9 0.99]
"""
import argparse

import torch

from benchmarks.timing import cpu_flags, cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear

SHAPES = [(2048, 512, 1024), (512, 2048, 1024), (1568, 1568, 32)]  # (out, in, rows), as cli.py bench


def forms(out_features: int, in_features: int, rows: int, sparsity: float) -> dict:
    """Name -> function of every product form (and the input copy) for one layer."""
    generator = torch.Generator().manual_seed(0)
    layer = SparseLinear(in_features, out_features, density=1 - sparsity, generator=generator)
    values = layer.values.detach()
    w, w_t = layer.cache.matrix(values), layer.cache.transposed(values)
    pattern = layer.cache.matrix(torch.zeros_like(values))
    x, dy = torch.randn(rows, in_features, generator=generator), torch.randn(rows, out_features, generator=generator)
    dy_t = dy.t().contiguous()
    return {
        "copy xᵀ": lambda: x.t().contiguous(),
        "fwd A": lambda: torch.addmm(x.new_empty(out_features, rows), w, x.t().contiguous(), beta=0.0),
        "fwd B": lambda: torch.addmm(x.new_empty(out_features, rows), w, x.t(), beta=0.0),
        "fwd C": lambda: torch.mm(x, w_t),
        "dx A": lambda: torch.addmm(x.new_empty(in_features, rows), w_t, dy.t().contiguous(), beta=0.0),
        "dx B": lambda: torch.addmm(x.new_empty(in_features, rows), w_t, dy.t(), beta=0.0),
        "dx C": lambda: torch.mm(dy, w),
        "dW A": lambda: torch.sparse.sampled_addmm(pattern, dy_t, x, beta=0.0),
        "dW B": lambda: torch.sparse.sampled_addmm(pattern, dy.t(), x, beta=0.0),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.9, 0.99], help="sparsities in [0, 1)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per cell (median)")
    args = parser.parse_args(argv)
    if not all(0 <= s < 1 for s in args.sparsities):
        parser.error(f"--sparsities must be in [0, 1), got {args.sparsities}")
    tune_cpu_allocator()
    names = list(forms(4, 4, 2, 0.5))
    print(f"CPU: {cpu_model()} ({cpu_flags()}); torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"median ms of {args.repeats}")
    print("| out×in | rows | sparsity | " + " | ".join(names) + " |\n|---|---:|---:|" + "---:|" * len(names))
    for out_features, in_features, rows in SHAPES:
        for sparsity in args.sparsities:
            cells = [median_ms(fn, args.repeats, 5) for fn in forms(out_features, in_features, rows, sparsity).values()]
            print(f"| {out_features}x{in_features} | {rows} | {sparsity:g} | "
                  + " | ".join(f"{ms:.3f}" for ms in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
