"""Cost per link of a sparse layer against its width: nanoseconds per link of one forward + backward of a
square ``SparseLinear`` (width x width, 10 links per neuron, batch 32, one process), next to the size of
its input activations and the CPU's last-level cache.

At a fixed number of links per neuron the kernels' work is O(links x batch); a cost per link that rises
with width is the memory hierarchy (each link gathers a batch row of an input that no longer fits in the
cache), not extra work. ``results/scale.md`` uses it to explain the step-time growth exponent.

    python -m benchmarks.link_cost --widths 3333 10000 33333 100000 333333
"""
import argparse

import torch

from benchmarks.timing import cpu_model, last_level_cache, median_ms
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.sparse import SparseLinear


def ns_per_link(width: int, links_per_neuron: int, batch: int, repeats: int) -> tuple[int, float]:
    """The layer's links and the median nanoseconds per link of forward + backward (input and value
    gradients)."""
    layer = SparseLinear(width, width, density=links_per_neuron / width, generator=torch.Generator().manual_seed(0))
    x = torch.randn(batch, width, requires_grad=True)

    def step():
        layer.values.grad = x.grad = None
        layer(x).sum().backward()

    return layer.nnz, median_ms(step, repeats=repeats, warmup=3) * 1e6 / layer.nnz


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[3333, 10_000, 33_333, 100_000, 333_333],
                        help="layer widths (in = out)")
    parser.add_argument("--links_per_neuron", type=int, default=10, help="links per neuron (nnz = K x width)")
    parser.add_argument("--batch", type=int, default=32, help="rows of the input")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per width (median)")
    args = parser.parse_args(argv)
    if min(args.widths) <= args.links_per_neuron:
        parser.error(f"--widths must exceed --links_per_neuron ({args.links_per_neuron}), got {min(args.widths)}")
    tune_cpu_allocator()
    print(f"CPU: {cpu_model()}; last-level cache {last_level_cache()}; torch {torch.__version__}; "
          f"{torch.get_num_threads()} threads; batch {args.batch}, {args.links_per_neuron} links per neuron")
    print("| width | links | input MiB | ns per link (fwd+bwd) |\n|---|---|---|---|")
    for width in args.widths:
        links, cost = ns_per_link(width, args.links_per_neuron, args.batch, args.repeats)
        print(f"| {width:,} | {links:,} | {args.batch * width * 4 / 2**20:.1f} | "
              f"{cost:.1f} |", flush=True)


if __name__ == "__main__":
    main()
