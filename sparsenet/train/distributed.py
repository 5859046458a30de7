"""Data parallelism under ``torchrun``: the process group from torchrun's environment, each rank's share of a
batch, gradients summed over the ranks, reductions of logged numbers, and the rank-0-only side effects.

How a recipe trains on W ranks (one process: every function below is the identity or a no-op):
  - every rank draws the same global batch (same seeded data generator) and keeps its part of it
    (``shard``: contiguous, ``tensor_split`` sizes); its loss is its part's summed loss divided by the
    *global* batch's count, so ``sum_gradients`` (an all-reduce of the gradients after backward) gives
    every rank exactly the one-process gradient of the global batch — also when a batch does not split
    evenly;
  - the optimizers then take identical steps; the ``TopologyEngine`` checks that the ranks' links agree,
    decides each update on rank 0 and broadcasts it;
  - rank 0 alone writes metrics, checkpoints and W&B (``is_main``); a checkpoint carries every rank's
    global RNG state (``rank_rng_states``) so that dropout continues exactly on resume.

Why an all-reduce of the gradients and not ``DistributedDataParallel``: DDP builds its gradient buckets
from the parameters' sizes when it is constructed, and every topology update changes the size of every
sparse layer's ``values`` (``set_`` to the new ``nnz``), so DDP would have to be rebuilt after each update
(a broadcast of the whole model and new buckets). The recipes' products are CPU-bound and their gradients
small (links, not dense matrices), so overlapping communication with backward, DDP's advantage, buys little
here; a flat all-reduce in ``BUCKET_BYTES`` pieces after backward is exact and survives any ``nnz`` change.
"""
import datetime
import os

import torch
from torch import distributed as dist

from ..runtime import exit_with_parent

BUCKET_BYTES = 1 << 25  # gradients all-reduced 32 MiB at a time (bounded extra memory)


def world_size() -> int:
    """Ranks of the process group, or torchrun's ``WORLD_SIZE`` before it is set up (1 without torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return rank() == 0


def active() -> bool:
    """Whether a process group of more than one rank is set up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def backend() -> str:
    """The process group's backends: gloo for CPU tensors, and NCCL for CUDA tensors where CUDA is present."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def setup(timeout_minutes: float = 60.0) -> bool:
    """Join torchrun's process group (``backend()``) when launched with ``WORLD_SIZE`` > 1, each process on its
    own GPU (its local rank) where CUDA is present; returns whether this is a distributed run. The timeout bounds
    a collective that waits for a rank doing a long topology update alone (the million-neuron MLP's take ~2
    minutes)."""
    if world_size() <= 1 or active():
        return active()
    if not dist.is_available():
        raise ValueError("launched with WORLD_SIZE > 1, but this torch build has no torch.distributed")
    exit_with_parent()  # a worker stops at its last checkpoint when its launcher dies, instead of training on
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend(), timeout=datetime.timedelta(minutes=timeout_minutes))
    return True


def shutdown(wait_for_peers: bool = False) -> None:
    """Leave the process group (nothing without one). ``wait_for_peers``: first a barrier, so no rank tears its
    group down while another is still writing or in a collective (a finished run). Without it (a run stopping
    on an error or a signal, whose peers may be gone) it leaves at once."""
    if active():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def check_divides(count: int, name: str) -> None:
    """``ValueError`` naming the option unless the world size divides ``count`` (a batch of samples)."""
    ranks = world_size()
    if ranks > 1 and count % ranks:
        raise ValueError(f"--{name} {count} does not split over {ranks} ranks: launch a number of processes "
                         f"that divides it, or choose a multiple of {ranks}")


def shard(items):
    """This rank's contiguous part of ``items`` (a tensor along dim 0, or a list): ``tensor_split`` sizes,
    so parts differ by at most one item. One process: ``items`` itself."""
    ranks = world_size()
    if ranks == 1:
        return items
    if isinstance(items, torch.Tensor):
        return items.tensor_split(ranks)[rank()]
    size, extra = divmod(len(items), ranks)
    start = rank() * size + min(rank(), extra)
    return items[start:start + size + (rank() < extra)]


def all_sum(*numbers: float) -> list[float]:
    """The sums over the ranks of ``numbers`` (float64); one process: the numbers."""
    if not active():
        return list(numbers)
    total = torch.tensor(numbers, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def sum_gradients(parameters, numbers: torch.Tensor) -> torch.Tensor:
    """All-reduce (sum) the gradients of ``parameters`` in place, and ``numbers`` (a 1-D float64 tensor of the
    step's logged loss and counts, on the device of the gradients) with them: one collective per step, in flat
    buckets of ``BUCKET_BYTES``. Returns the summed ``numbers`` on their device; one process: ``numbers``, and
    the gradients untouched.

    A parameter with a gradient on some rank but not on another (an empty part of a batch) gets the others'
    sum; one with no gradient on any rank keeps ``None``, as in one process (each gradient travels with a
    presence flag, whose sum is the step's one read back to the host)."""
    if not active():
        return numbers
    parameters = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flags = torch.cat((torch.tensor([p.grad is not None for p in parameters], dtype=torch.float64,
                                    device=numbers.device), numbers.to(torch.float64)))
    summed = None
    for bucket in _buckets(grads):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        # the flags and numbers ride with the first float bucket on their device (exact: flags and counts < 2**24)
        riding = summed is None and flat.dtype in (torch.float32, torch.float64) and flat.device == flags.device
        if riding:
            flat = torch.cat((flat, flags.to(flat.dtype)))
        dist.all_reduce(flat)
        if riding:
            flat, summed = flat[:-flags.numel()], flat[-flags.numel():].to(torch.float64)
        for g, part in zip(bucket, flat.split([g.numel() for g in bucket])):
            g.copy_(part.view_as(g))
    if summed is None:  # no float32/64 gradient on their device to ride with (or no gradient at all)
        dist.all_reduce(flags)
        summed = flags
    for parameter, grad, present in zip(parameters, grads, summed[:len(parameters)].tolist()):
        parameter.grad = grad if present else None
    return summed[len(parameters):]


def _buckets(grads: list):
    bucket, size = [], 0
    for g in grads:
        if bucket and (size + g.numel() * g.element_size() > BUCKET_BYTES or g.dtype != bucket[0].dtype
                       or g.device != bucket[0].device):
            yield bucket
            bucket, size = [], 0
        bucket.append(g)
        size += g.numel() * g.element_size()
    if bucket:
        yield bucket


def seed_rank_stream(seed: int) -> None:
    """Give ranks > 0 their own global RNG stream (dropout), after the model is built from the shared seed;
    rank 0 keeps the one-process stream, so a one-process run draws what it always drew."""
    if rank() > 0:
        torch.manual_seed(seed * 1_000_003 + rank())


def rank_rng_states() -> dict:
    """Checkpoint fields that restore every rank's global RNG on resume: ``{"world_size", "rank_rng"}``
    (``rank_rng``: each rank's ``torch.get_rng_state()``). A collective: every rank calls it."""
    if not active():
        return {"world_size": 1}
    states = [None] * world_size()
    dist.all_gather_object(states, torch.get_rng_state())
    return {"world_size": world_size(), "rank_rng": states}


def check_world_size(checkpoint: dict) -> None:
    """``ValueError`` when the checkpoint was written by another number of ranks (checked before any work)."""
    saved = checkpoint.get("world_size", 1)
    if saved != world_size():
        raise ValueError(f"the checkpoint was written by {saved} rank(s); resume it with {saved} "
                         f"(torchrun --nproc_per_node {saved}), not {world_size()}")


def restore_rank_rng(checkpoint: dict) -> None:
    """Put this rank's global RNG where ``rank_rng_states`` saved it: call it last, after the recipe has
    seeded and restored rank 0's state (the checkpoint's ``rng``) on every rank."""
    if rank() > 0:
        torch.set_rng_state(checkpoint["rank_rng"][rank()])


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0


def local_world_size() -> int:
    """Processes of this run on this machine (torchrun's ``LOCAL_WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if world_size() > 1 else 1


def load_in_turn(load):
    """``load()`` on rank 0 first, then on each machine's local rank 0, then on the other ranks, a barrier
    between the three: the first loader prepares a data set's caches (BPE, tokenised text, unpacked files)
    and the others read them, instead of all writing the same files at once."""
    if not active():
        return load()
    result = None
    for turn in (rank() == 0, rank() != 0 and local_rank() == 0, local_rank() != 0):
        if turn:
            result = load()
        dist.barrier()
    return result
