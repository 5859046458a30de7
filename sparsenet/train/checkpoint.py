"""Atomic, checksummed checkpoints: written to a temporary file in the same folder, then renamed over the old
one. File format: the header line ``sparsenet-checkpoint <version> <sha256 of the payload>``, then the
payload, ``torch.save`` of the state. A truncated, garbled or foreign file is refused with one line."""
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import torch

from ..sparse.csr import expand

FORMAT_VERSION = 1
MAGIC = b"sparsenet-checkpoint"
TEMPORARY_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: missing, truncated, corrupt, or not sparsenet's."""


def atomic_write(path: Path, write) -> Path:
    """Call ``write(file_object)`` on a temp file next to ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files an interrupted ``atomic_write`` left in ``folder``; returns them."""
    folder = Path(folder)
    stale = sorted(folder.glob(f"*.*{TEMPORARY_SUFFIX}")) if folder.is_dir() else []
    for file in stale:
        file.unlink()
    return stale


def save_checkpoint(path: Path, state: dict) -> Path:
    """Save ``state`` (model, optimizer, engine, schedulers, RNG states, counters, config) atomically,
    behind a header carrying the format version and the payload's SHA-256."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = b"%s %d %s\n" % (MAGIC, FORMAT_VERSION, hashlib.sha256(payload).hexdigest().encode())
    return atomic_write(path, lambda f: (f.write(header), f.write(payload)))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """The state saved by ``save_checkpoint`` at ``path``, its tensors on ``map_location`` (whatever device wrote
    them); ``CheckpointError`` (one line naming the file) if it is missing, not a sparsenet checkpoint of this
    format, truncated or corrupt."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error.strerror or error})") from None
    header, _, payload = data.partition(b"\n")
    fields = header.split(b" ")
    if len(fields) != 3 or fields[0] != MAGIC:
        raise CheckpointError(f"{path}: not a sparsenet checkpoint (or one written before checksums)")
    if fields[1] != str(FORMAT_VERSION).encode():
        raise CheckpointError(f"{path}: checkpoint format {fields[1].decode(errors='replace')}, this sparsenet "
                              f"reads format {FORMAT_VERSION}")
    if hashlib.sha256(payload).hexdigest().encode() != fields[2]:
        raise CheckpointError(f"{path}: corrupt checkpoint (checksum mismatch: truncated or overwritten)")
    return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)


def write_json(path: Path, data) -> Path:
    return atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def rng_state(generators: dict) -> dict:
    """Torch's global CPU (and CUDA) RNG plus the given named generators."""
    state = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in generators.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generators: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in generators.items():
        generator.set_state(state[name])


def load_topologies(path: str | Path) -> dict:
    """The sparse layers' links saved by a run: ``{layer name: indices (2, nnz) int64}`` from ``path``'s
    ``model`` state (a run directory means its ``checkpoint.pt``, the run's last topology)."""
    path = Path(path)
    file = path / "checkpoint.pt" if path.is_dir() else path
    if not file.exists():
        raise ValueError(f"--init_topology {path}: no {file.name} there")
    state = load_checkpoint(file).get("model", {})
    topologies = {key[:-len(".indices")]: value for key, value in state.items() if key.endswith(".indices")}
    topologies.update({key[:-len(".col")]: expand(state[key[:-len(".col")] + ".crow"], value)  # CSR storage
                       for key, value in state.items() if key.endswith(".col") and key[:-4] + ".crow" in state})
    if not topologies:
        raise ValueError(f"--init_topology {path}: {file.name} holds no sparse layer (a dense run?)")
    return topologies
