"""Runs are never lost or corrupted: Ctrl-C and SIGTERM stop with one line and exit 130/143, and --resume
then gives the uninterrupted run's metrics; a re-run command does not overwrite a run; checkpoints carry a
checksum; stale temporary files go."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenet.train import classify
from sparsenet.train.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries, save_checkpoint
from tests.conftest import TINY_DATA, run_cli
from tests.train.test_recipe import _metrics

ROOT = Path(__file__).resolve().parents[2]
TINY = str(TINY_DATA)
BASE = ["--dataset", "mnist", "--data_dir", TINY, "--hidden", "256,256", "--sparsity", "0.5", "--epochs", "4",
        "--wandb", "off", "--quiet"]


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> Path:
    """The uninterrupted 4-epoch run both signal tests compare with."""
    out = tmp_path_factory.mktemp("whole")
    assert run_cli("train", *BASE, "--out_dir", str(out), "--run_name", "whole").returncode == 0
    return out / "whole"


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory) -> Path:
    """A finished one-epoch run, trained once for the tests below (each works on its own copy)."""
    out = tmp_path_factory.mktemp("runs")
    assert run_cli("train", *BASE, "--epochs", "1", "--out_dir", str(out), "--run_name", "run").returncode == 0
    return out / "run"


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_signal_stops_in_one_line_and_resume_gives_the_uninterrupted_run(tmp_path, whole_run, signum, code, name):
    run_dir = tmp_path / "cut"
    process = subprocess.Popen([sys.executable, "cli.py", "train", *BASE, "--out_dir", str(tmp_path), "--run_name",
                                "cut"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.005)
    if process.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    if (run_dir / "summary.json").exists():
        pytest.skip("the run finished before the signal arrived")
    assert process.returncode == code
    assert stderr.strip() == f"interrupted ({name}); resume with: python cli.py train --resume {run_dir}"
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(run_dir) == _metrics(whole_run)


def test_rerunning_a_command_does_not_overwrite_its_run(tmp_path, one_epoch_run):
    args = [*BASE, "--epochs", "1", "--out_dir", str(tmp_path), "--run_name", "run"]
    shutil.copytree(one_epoch_run, tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()  # as if interrupted after its checkpoint
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    again = run_cli("train", *args)
    assert again.returncode == 1 and again.stderr.strip() == (
        f"error: {tmp_path / 'run'} holds an unfinished run; continue it with --resume {tmp_path / 'run'}, or pass "
        f"--restart to start it again from scratch")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    assert run_cli("train", *args, "--restart").returncode == 0 and (tmp_path / "run" / "summary.json").exists()
    finished = run_cli("train", *args)
    assert finished.returncode == 1 and "holds a finished run; pass --restart" in finished.stderr


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:len(data) // 2], "corrupt checkpoint (checksum mismatch"),
    (lambda data: data[:-100] + bytes(100), "corrupt checkpoint (checksum mismatch"),
    (lambda data: b"", "not a sparsenet checkpoint"),
    (lambda data: data.split(b"\n", 1)[1], "not a sparsenet checkpoint"),  # a bare torch.save file
    (lambda data: data.replace(b"sparsenet-checkpoint 1 ", b"sparsenet-checkpoint 9 ", 1), "checkpoint format 9"),
], ids=["truncated", "garbled", "empty", "headerless", "future-format"])
def test_damaged_checkpoint_is_refused_in_one_line_and_nothing_is_rewritten(tmp_path, one_epoch_run, damage, message):
    run_dir = tmp_path / "run"
    shutil.copytree(one_epoch_run, run_dir)
    (run_dir / "summary.json").unlink()
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    before = {f.name: f.read_bytes() for f in run_dir.iterdir()}
    with pytest.raises(CheckpointError) as error:
        classify.train(None, resume=run_dir)
    assert str(error.value).startswith(f"{checkpoint}: {message}") and "\n" not in str(error.value)
    assert {f.name: f.read_bytes() for f in run_dir.iterdir()} == before


def test_damaged_checkpoint_through_the_cli_is_one_line_and_exit_1(tmp_path, one_epoch_run):
    run_dir = tmp_path / "run"
    shutil.copytree(one_epoch_run, run_dir)
    (run_dir / "checkpoint.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes()[:1000])
    result = run_cli("train", "--resume", str(run_dir))
    assert result.returncode == 1 and result.stderr.strip() == (
        f"error: {run_dir / 'checkpoint.pt'}: corrupt checkpoint (checksum mismatch: truncated or overwritten)")


def test_checkpoint_round_trip_and_stale_temporaries(tmp_path):
    state = {"values": torch.randn(7), "step": 3}
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    loaded = load_checkpoint(tmp_path / "checkpoint.pt")
    assert torch.equal(loaded["values"], state["values"]) and loaded["step"] == 3
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "absent.pt")
    stale = tmp_path / "checkpoint.pt.k3j9x2.tmp"  # what a kill during atomic_write leaves
    stale.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale] and not stale.exists()
    assert (tmp_path / "checkpoint.pt").exists() and remove_stale_temporaries(tmp_path / "absent") == []
