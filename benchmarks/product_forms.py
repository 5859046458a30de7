"""Which product form should each of the sparse layer's three products use? Median ms of the alternatives
torch offers for a row-major ``(n, in)`` input and a row-major ``(n, out)`` output gradient, one process:

forward     y = x Wᵀ:    (A) W @ xᵀ copied contiguous (the kernel's ``forward_product``; the copy is timed
                         with it), (B) W @ xᵀ as a strided view (the library copies or walks it itself),
                         (C) x @ (Wᵀ as CSR), dense times sparse, (D) W @ each of xᵀ's 128-column pieces,
                         given as contiguous ``(in, 128)`` matrices (a batch-blocked layout; no copy timed);
grad input  dx = dy W:   (A) Wᵀ @ dyᵀ copied contiguous (``input_grad_product``), (B) Wᵀ @ dyᵀ view,
                         (C) dy @ W, (D) Wᵀ @ each of dyᵀ's pieces as in the forward;
grad values dW on links: (A) the kernel's ``values_grad_product`` on the contiguous dyᵀ and xᵀ the two
                         products above made, (B) sampled_addmm with the row-major x, (C) with dyᵀ as a
                         view too;
plus the copy of xᵀ alone. Measured on this workplace's 2-core Intel Xeon (2 threads, README's Performance
section): the strided forms (B) of the two CSR products cost what (A) costs copy included (the library
copies them itself); the value-gradient product wants xᵀ contiguous, so (A)'s copy serves it too, and its
row-major forms are 1.2-4.3x slower at 99%; dense-times-sparse (C) is 1.05-33x slower; the batch-blocked
form (D) is 1.1-6.3x faster than (A) at 1,024 rows, since each piece of the dense operand stays in cache.

    python -m benchmarks.product_forms [--sparsities 0.9 0.99]
"""
import argparse

import torch

from benchmarks.timing import cpu_flags, cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear
from sparsenet.sparse.functional import _csr_times_dense, forward_product, input_grad_product, values_grad_product

SHAPES = [(2048, 512, 1024), (512, 2048, 1024), (1568, 1568, 32)]  # (out, in, rows), as cli.py bench
BLOCK = 128  # columns per piece of the batch-blocked form (D)


def forms(out_features: int, in_features: int, rows: int, sparsity: float) -> dict:
    """Name -> function of every product form (and the input copy) for one layer."""
    generator = torch.Generator().manual_seed(0)
    layer = SparseLinear(in_features, out_features, density=1 - sparsity, generator=generator)
    values, cache = layer.values.detach(), layer.cache
    x, dy = torch.randn(rows, in_features, generator=generator), torch.randn(rows, out_features, generator=generator)
    x_t, dy_t = x.t().contiguous(), dy.t().contiguous()
    x_blocks, dy_blocks = ([t[i:i + BLOCK].t().contiguous() for i in range(0, rows, BLOCK)] for t in (x, dy))
    # Every form builds its CSR operand from the cache per call, as the kernel does, and the CSR-times-dense
    # forms all write into a fresh buffer through out=, so the forms differ only in how they meet the layout.
    return {
        "copy xᵀ": lambda: x.t().contiguous(),
        "fwd A": lambda: forward_product(cache, values, x.t().contiguous(), None),
        "fwd B": lambda: _csr_times_dense(cache.matrix(values), x.t()),
        "fwd C": lambda: torch.mm(x, cache.transposed(values)),
        "fwd D": lambda: [_csr_times_dense(cache.matrix(values), block) for block in x_blocks],
        "dx A": lambda: input_grad_product(cache, values, dy.t().contiguous()),
        "dx B": lambda: _csr_times_dense(cache.transposed(values), dy.t()),
        "dx C": lambda: torch.mm(dy, cache.matrix(values)),
        "dx D": lambda: [_csr_times_dense(cache.transposed(values), block) for block in dy_blocks],
        "dW A": lambda: values_grad_product(cache, values, dy_t, x_t),
        "dW B": lambda: torch.sparse.sampled_addmm(cache.matrix(torch.zeros_like(values)), dy_t, x, beta=0.0),
        "dW C": lambda: torch.sparse.sampled_addmm(cache.matrix(torch.zeros_like(values)), dy.t(), x, beta=0.0),
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
