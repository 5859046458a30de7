"""The timing helpers of the benchmark scripts: median timing on a device and the machine facts printed beside
the numbers, from the package (``sparsenet.experiments.timing``), where ``cli.py bench`` uses them too."""
from sparsenet.experiments.timing import cpu_flags, cpu_model, last_level_cache, machine_line, median_ms

__all__ = ["cpu_flags", "cpu_model", "last_level_cache", "machine_line", "median_ms"]
