"""Median wall-clock timing after warm-up, in one process, and the machine facts printed beside it."""
import platform
import statistics
import time
from pathlib import Path

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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (e.g. ``AMD EPYC``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                "amx_tile", "asimd", "sve")  # the vector extensions the kernels' libraries dispatch on


def cpu_flags() -> str:
    """The CPU's vector extensions among ``VECTOR_FLAGS`` from /proc/cpuinfo (e.g. ``avx avx2 fma``)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next(line.split(":", 1)[1].split() for line in cpuinfo
                         if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        return "unknown flags"
    return " ".join(flag for flag in VECTOR_FLAGS if flag in flags) or "no vector flags listed"


def last_level_cache() -> str:
    """The size of CPU 0's highest-level cache as /sys lists it (e.g. ``32768K``), or ``unknown``."""
    try:
        caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"), key=lambda p: int(p.name[5:]))
        return (caches[-1] / "size").read_text().strip()
    except (OSError, IndexError, ValueError):
        return "unknown"
