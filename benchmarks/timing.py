"""Median wall-clock timing after warm-up, in one process."""
import statistics
import time

import torch


def median_ms(fn, repeats: int = 20, warmup: int = 5) -> float:
    """Median of ``repeats`` timed calls of ``fn()`` after ``warmup`` untimed ones, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3
