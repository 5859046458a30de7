"""Do subnormal floats slow the sparse kernels on this CPU? Median forward + backward of a ``SparseLinear``
(and a dense GEMM of the same shape) with normal weights and with weights scaled into float32's subnormal
range (products below 1.2e-38), with ``torch.set_flush_denormal`` off and on, one process.

Very sparse weights that decay towards zero can drift subnormal; on CPUs that trap to microcode for them a
product runs several times slower (Nerva measured 8x). ``sparsenet.tune_cpu()`` (what ``cli.py`` runs with)
flushes them to zero by default; this table says whether that matters here.

    python -m benchmarks.denormals
"""
import argparse

import torch

from benchmarks.timing import cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear

SUBNORMAL = 1e-39  # times N(0, 1) weights: the values and their products with N(0, 1) inputs are subnormal


def step_ms(out_features: int, in_features: int, density: float, batch: int, scale: float, dense: bool,
            repeats: int) -> float:
    """Median ms of forward + backward (sparse) or of ``x @ Wᵀ`` (dense) with weights times ``scale``."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_features, generator=generator)
    if dense:
        weight = torch.randn(out_features, in_features, generator=generator) * scale
        return median_ms(lambda: x @ weight.t(), repeats=repeats, warmup=3)
    layer = SparseLinear(in_features, out_features, density=density, generator=generator)
    with torch.no_grad():
        layer.values.mul_(scale)

    def step():
        layer.values.grad = None
        layer(x).sum().backward()

    return median_ms(step, repeats=repeats, warmup=3)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[1568, 1568], metavar=("OUT", "IN"),
                        help="layer shape")
    parser.add_argument("--density", type=float, default=0.01, help="share of links, in (0, 1]")
    parser.add_argument("--batch", type=int, default=32, help="rows of the input")
    parser.add_argument("--repeats", type=int, default=40, help="timed repeats per cell (median)")
    args = parser.parse_args(argv)
    if not 0 < args.density <= 1:
        parser.error(f"--density must be in (0, 1], got {args.density}")
    tune_cpu_allocator()
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"{args.shape[0]}x{args.shape[1]}, density {args.density:g}, batch {args.batch}")
    print("| kernel | flush_denormal | normal ms | subnormal ms | subnormal / normal |\n|---|---|---:|---:|---:|")
    for dense in (False, True):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            normal, subnormal = (step_ms(*args.shape, args.density, args.batch, scale, dense, args.repeats)
                                 for scale in (1.0, SUBNORMAL))
            print(f"| {'dense GEMM' if dense else 'SparseLinear fwd+bwd'} | {flush} | {normal:.3f} | "
                  f"{subnormal:.3f} | {subnormal / normal:.2f}x |", flush=True)
    torch.set_flush_denormal(False)


if __name__ == "__main__":
    main()
