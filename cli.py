"""sparsenet command line. Run ``python cli.py COMMAND --help`` for a command's options."""
import json
import time

import fire
import torch

from sparsenet.runtime import tune_cpu_allocator


class CLI:
    """sparsenet: truly sparse dynamic sparse training. Commands: bench, inspect."""

    def bench(self, repeats: int = 20, warmup: int = 5, threads: int | None = None):
        """Print the layer speed/memory table: dense vs dense+mask vs SparseLinear.

        Shapes (out×in, batch): 1568×784/32, 1568×1568/32, 2048×512/1024, 512×2048/1024, at sparsity
        0.9, 0.95, 0.99, 0.999. Time = median forward+backward ms; memory = weights + grads + Adam.

        Args:
            repeats: timed forward+backward steps per cell (median reported); at least 1.
            warmup: untimed steps before timing.
            threads: torch CPU threads (default: torch's choice).
        """
        from tqdm import tqdm

        from benchmarks.layer_speed import run
        if repeats < 1 or warmup < 0:
            raise SystemExit("error: --repeats must be >= 1 and --warmup >= 0")
        if threads is not None:
            torch.set_num_threads(threads)
        print(run(repeats, warmup, progress=lambda shapes: tqdm(shapes, desc="shapes", disable=None)))

    def inspect(self, init: str = "bsw", shape: tuple = (1568, 1568), density: float = 0.01, beta: float = 0.25,
                r: float = 0.25, degree_dist: str = "fixed", equal_partition: bool = False, seed: int = 0,
                plot: str | None = None):
        """Build one layer's topology and print its measures as JSON.

        Args:
            init: initialiser: er, bsw, bsf, brf or csti (csti correlates scikit-learn's 8x8 digits, 64
                features, so both sizes of --shape must be multiples of 64).
            shape: out,in of the layer, e.g. --shape 1568,784.
            density: share of links, in (0, 1]; nnz = round(density * out * in), at least 1.
            beta: bsw rewiring probability in [0, 1].
            r: brf locality in [0, 1] (0 nearest, 1 uniform).
            degree_dist: brf degrees of the smaller side: fixed or uniform.
            equal_partition: rewire the input side to equal degrees (the BSF fix for a first layer).
            seed: random seed.
            plot: if given, save a log-log degree distribution PNG at this path.
        """
        from sparsenet.topology import equal_partition as flatten_inputs, make_topology
        from sparsenet.topology.report import describe, plot_degrees
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
            raise SystemExit(f"error: --shape must be two positive integers out,in; got {shape!r}")
        options = {"bsw": {"beta": beta}, "brf": {"r": r, "degree_dist": degree_dist}}.get(init, {})
        if init == "csti":
            from sklearn.datasets import load_digits
            options = {"features": torch.from_numpy(load_digits().data).float()}
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        try:
            indices = make_topology(init, shape[0], shape[1], density, generator, **options)
            if equal_partition:
                indices = flatten_inputs(indices, tuple(shape), generator)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        report = {"init": init, **{k: v for k, v in options.items() if k != "features"}, "seed": seed,
                  "seconds": round(time.perf_counter() - start, 4), **describe(indices, tuple(shape))}
        if plot:
            report["plot"] = str(plot_degrees(indices, tuple(shape), plot, f"{init} {shape[0]}x{shape[1]}"))
        print(json.dumps(report))


if __name__ == "__main__":
    tune_cpu_allocator()
    fire.Fire(CLI)
