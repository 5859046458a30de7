"""Median timing on a device and the machine facts printed beside the numbers (the device itself comes from
``sparsenet.train.device.resolve_device``, as for training).

``median_ms`` times a callable on the CPU with the wall clock and on CUDA with CUDA events (the work is
asynchronous: a host clock read without a synchronisation times the launch, not the kernels);
``machine_line`` names the processor that ran the numbers (CPU model and vector extensions, or the GPU).
"""
import platform
import statistics
import time
from pathlib import Path

import torch

def median_ms(fn, repeats: int = 20, warmup: int = 5, device: torch.device | str = "cpu") -> float:
    """Median of ``repeats`` timed calls of ``fn()`` after ``warmup`` untimed ones, in milliseconds.

    CPU: ``time.perf_counter`` around each call. CUDA: a pair of CUDA events recorded around each call on
    ``device``'s current stream, read after one synchronisation at the end (so the timed calls queue back to
    back, as in training, and each event pair measures the kernels of its own call)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.synchronize()
            pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                     for _ in range(repeats)]
            for start, end in pairs:
                start.record()
                fn()
                end.record()
            torch.cuda.synchronize()
            return statistics.median(start.elapsed_time(end) for start, end in pairs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
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


def gpu_model(device: torch.device) -> str:
    """``NAME (N SMs, X GiB, compute capability M.m)`` of a CUDA device, with torch's CUDA version."""
    props = torch.cuda.get_device_properties(device)
    return (f"{props.name} ({props.multi_processor_count} SMs, {props.total_memory / 2**30:.0f} GiB, compute "
            f"capability {props.major}.{props.minor}), CUDA {torch.version.cuda}")


def machine_line(device: torch.device | str = "cpu") -> str:
    """The processor that ran the numbers: on the CPU its model, vector extensions and torch's threads; on
    CUDA the GPU (``gpu_model``) and the host CPU's model; then the torch version."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{gpu_model(device)}; host {cpu_model()}; torch {torch.__version__}"
    return f"{cpu_model()} ({cpu_flags()}), {torch.get_num_threads()} threads, torch {torch.__version__}"
