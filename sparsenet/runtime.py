"""Process-level settings for CPU speed, and the process's peak memory."""
import ctypes
import ctypes.util
import resource
import sys

import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_cpu_allocator() -> bool:
    """Keep large freed buffers in glibc's heap instead of returning them to the OS.

    By default glibc serves blocks over a dynamic threshold with fresh ``mmap`` pages and trims the
    heap on free, so every step of a training loop page-faults its activations in again (measured here:
    a 2048x1024 sparse product took 4.9 ms instead of 0.6 ms). This is the same remedy as PyTorch's CPU
    tuning guide's jemalloc/tcmalloc advice, without a preload. Returns False (and does nothing) where
    glibc's ``mallopt`` is not available.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def tune_cpu(flush_denormal: bool = True) -> dict:
    """The process settings ``cli.py`` runs with; call it once at the top of your own script to get the same
    speed from ``SparseLinear``: ``tune_cpu_allocator()`` and, by default, flushing subnormal floats to zero
    (``torch.set_flush_denormal``: very small weights and products then cost what normal ones do; some CPUs
    slow down several-fold on subnormals, this workplace's AMD EPYC measured no difference). Returns what
    was set: ``{"allocator": bool, "flush_denormal": bool}`` (False where the platform has no such control)."""
    return {"allocator": tune_cpu_allocator(),
            "flush_denormal": bool(torch.set_flush_denormal(flush_denormal)) and flush_denormal}


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
