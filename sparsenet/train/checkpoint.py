"""Atomic checkpoints: write to a temporary file in the same folder, then rename over the old one."""
import json
import os
import tempfile
from pathlib import Path

import torch


def atomic_write(path: Path, write) -> Path:
    """Call ``write(file_object)`` on a temp file next to ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
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


def save_checkpoint(path: Path, state: dict) -> Path:
    """``torch.save`` of ``state`` (model, optimizer, engine, schedulers, RNG states, counters, config)."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


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
    if not topologies:
        raise ValueError(f"--init_topology {path}: {file.name} holds no sparse layer (a dense run?)")
    return topologies
