"""Forward+backward time and training memory of one layer: dense (fp32, TF32 on CUDA, bf16) vs dense+mask vs
SparseLinear, the table of ``python cli.py bench``. The code is ``sparsenet.experiments.layer_bench`` (its
docstring says what each column measures); this script is its stand-alone front.

    python -m benchmarks.layer_speed [--repeats 20] [--profile] [--device auto|cpu|cuda|cuda:N]
"""
import argparse

from sparsenet.experiments.layer_bench import bench, report
from sparsenet.runtime import tune_cpu_allocator
from sparsenet.train.device import resolve_device

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="split the sparse layer's time by op kind")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    tune_cpu_allocator()
    print(report(bench(args.repeats, args.warmup, device=device, profile=args.profile), args.repeats, args.warmup,
                 device))
