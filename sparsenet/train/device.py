"""Where a run computes and in what precision: ``--device`` (auto, cpu, cuda, cuda:N) resolved against this
machine, and ``--precision`` (fp32, bf16, fp16) as an autocast context and, for fp16, a gradient scaler.

Values and optimizer state stay fp32 in every precision (autocast casts a product's inputs, not the
parameters); fp16's narrow range needs its loss scaled, bf16's does not."""
import contextlib

import torch

from .distributed import local_rank, world_size

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` of ``--device name``: ``auto`` is CUDA when this machine has it, else the CPU;
    ``cuda`` (and ``auto`` on CUDA) is this process's GPU under torchrun (its local rank), else GPU 0.
    ``ValueError`` (one line) for a name that is not a device, or a device this machine lacks."""
    if not isinstance(name, str) or not (name in ("auto", "cpu", "cuda") or name.startswith("cuda:")
                                         and name.removeprefix("cuda:").isdigit()):
        raise ValueError(f"unknown device {name!r}; choose from auto, cpu, cuda or cuda:N")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA device (or this torch build has no CUDA); use "
                         f"--device cpu or auto")
    if name in ("auto", "cuda"):
        return torch.device("cuda", local_rank() if world_size() > 1 else 0)
    index = name.removeprefix("cuda:")
    count = torch.cuda.device_count()
    if int(index) >= count:
        raise ValueError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", int(index))


def autocast(device: torch.device, precision: str):
    """The context to run a forward and its loss in: ``torch.autocast`` in the precision's dtype, or nothing
    for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (its state goes into the checkpoint), ``None`` for fp32 and bf16."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
