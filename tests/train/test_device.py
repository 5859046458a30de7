"""``--device``: names resolved against this machine (one-line errors for the others), and a checkpoint written on
one device resumed on another (every device of tests/devices.py, CPU to CPU on a machine without CUDA) with the
same topology and values, its tensors loaded through ``map_location``."""
import itertools
import json
from pathlib import Path

import pytest
import torch

from sparsenet.train import classify, loop, run
from sparsenet.train.checkpoint import load_checkpoint, save_checkpoint
from sparsenet.train.device import resolve_device
from tests.devices import DEVICES

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("name, expected", [
    ("cpu", "cpu"), ("auto", "cuda:0" if CUDA else "cpu"),
    *([("cuda", "cuda:0"), ("cuda:0", "cuda:0")] if CUDA else []),
])
def test_device_names_resolve(name, expected):
    assert resolve_device(name) == torch.device(expected)


@pytest.mark.parametrize("name, message", [
    ("tpu", "unknown device 'tpu'; choose from auto, cpu, cuda or cuda:N"),
    ("cuda:-1", "unknown device 'cuda:-1'"),
    ("CPU", "unknown device 'CPU'"),
    (3, "unknown device 3"),
    ("cuda:99", f"--device cuda:99: this machine has {torch.cuda.device_count()} CUDA device(s)" if CUDA else
     "--device cuda:99: this machine has no CUDA device"),
    *([] if CUDA else [("cuda", "--device cuda: this machine has no CUDA device")]),
])
def test_other_device_names_are_one_line_errors(name, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        resolve_device(name)


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_loads_onto_the_device_asked_for(tmp_path, device):
    state = {"model": {"values": torch.arange(4.0, device=DEVICES[-1])}, "step": 3}
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    loaded = load_checkpoint(tmp_path / "checkpoint.pt", map_location=device)
    assert loaded["model"]["values"].device.type == device and loaded["step"] == 3
    assert torch.equal(loaded["model"]["values"].cpu(), torch.arange(4.0))


class Restored(BaseException):
    """Stops a resumed run right after its restore (not an Exception: nothing catches it)."""


@pytest.mark.parametrize("written, resumed", list(itertools.product(DEVICES, DEVICES)))
def test_a_run_resumes_on_another_device_with_its_topology_and_values(tmp_path, monkeypatch, written, resumed):
    config = classify.build_config(dataset="digits", hidden=(32, 32), method="set", epochs=2, device=written,
                                   out_dir=str(tmp_path), wandb="off", quiet=True)
    real_save, saves = loop.save_checkpoint, []

    def stop_after_first_checkpoint(path, state):
        real_save(path, state)
        saves.append(Path(path).name)
        if saves.count("checkpoint.pt") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", stop_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        classify.train(config)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    run_dir = Path(config.out_dir) / config.name
    saved = load_checkpoint(run_dir / "checkpoint.pt")
    seen = {}

    def stop_at_the_loop(built, *args, device, **kwargs):
        seen.update(device=device, model=built.model.state_dict(), hash=built.engine.topology_hash(),
                    momentum=[s["momentum_buffer"] for s in built.optimizer.state.values()])
        raise Restored

    monkeypatch.setattr(run, "train_loop", stop_at_the_loop)
    with pytest.raises(Restored):
        classify.train(None, resume=run_dir, device=resumed)
    assert seen["device"] == resolve_device(resumed)
    logged = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["topology_hash"]
    assert seen["hash"] == logged  # the links epoch 1's update left
    for name, tensor in saved["model"].items():  # every value and every link, now on the resumed device
        assert seen["model"][name].device.type == resumed and torch.equal(seen["model"][name].cpu(), tensor), name
    assert all(m.device.type == resumed for m in seen["momentum"])


def test_a_checkpoint_of_the_loop_before_it_was_shared_is_refused_in_one_line(tmp_path):
    run_dir = tmp_path / "old"
    save_checkpoint(run_dir / "checkpoint.pt", {"model": {}, "epoch": 1, "global_step": 23, "config": {}})
    with pytest.raises(ValueError, match="its checkpoint was written by a sparsenet before the shared training loop"):
        classify.train(None, resume=run_dir)
