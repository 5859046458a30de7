"""sparsenet command line. Run ``python cli.py COMMAND --help`` for a command's options."""
import fire
import torch

from sparsenet.runtime import tune_cpu_allocator


class CLI:
    """sparsenet: truly sparse dynamic sparse training. Commands: bench."""

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


if __name__ == "__main__":
    tune_cpu_allocator()
    fire.Fire(CLI)
