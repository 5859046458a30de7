"""Data-parallel training as a user launches it: ``torchrun --nproc_per_node 2 cli.py train ...`` on 2 gloo
ranks on 127.0.0.1 (one thread each). Two ranks sharing a global batch train the one-process loss curve
(SGD, no dropout) with the same topology after every update; a 2-rank run resumes exactly; a batch the
ranks cannot share is refused before any work."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_DATA, run_cli

ROOT = Path(__file__).resolve().parents[2]
# 480 training images, batches of 96 (48 per rank): 5 steps per epoch, 10 epochs = 50 steps, an update each epoch
BASE = ["--dataset", "mnist", "--data_dir", str(TINY_DATA), "--hidden", "32,32", "--sparsity", "0.8",
        "--batch_size", "96", "--epochs", "10", "--valid_fraction", "0", "--wandb", "off", "--quiet"]


def torchrun(*args, ranks: int = 2, timeout: float = 300, wait: bool = True):
    """``python -m torch.distributed.run --standalone --nproc_per_node RANKS cli.py train ARGS`` in the repository."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               "cli.py", "train", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _interrupt_after_the_first_checkpoint(args: list, out_dir: Path, name: str) -> tuple[Path, str]:
    """Start a 2-rank run, SIGTERM torchrun (it passes the signal to both ranks) once its first checkpoint
    exists; ``(run_dir, stderr)``. Skips the test when the run finished first."""
    run_dir = out_dir / name
    process = torchrun(*args, "--out_dir", out_dir, "--run_name", name, wait=False)
    while process.poll() is None and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    if (run_dir / "summary.json").exists():
        pytest.skip("the run finished before the signal arrived")
    assert process.returncode != 0
    return run_dir, stderr


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k and k != "peak_rss_bytes"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["set", "rigl", "chts"])
def test_two_ranks_train_the_one_process_loss_curve_with_its_topology(tmp_path, method):
    one = run_cli("train", *BASE, "--method", method, "--out_dir", tmp_path / "one")
    two = torchrun(*BASE, "--method", method, "--out_dir", tmp_path / "two")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    name = f"mlp-mnist-{method}-s0.8-seed0"
    single, double = _records(tmp_path / "one" / name), _records(tmp_path / "two" / name)
    assert len(single) == len(double) == 10
    for a, b in zip(single, double):  # a record every 5 steps: 50 steps
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (a["epoch"], key)
        assert b["links"] == a["links"]
        assert b.get("topology_hash") == a.get("topology_hash")  # rank 0's links = one process's
    assert sum("topology_hash" in r for r in double) >= 5  # updates (each checked equal on both ranks)
    assert two.stdout.count("test accuracy") == 1  # rank 0 alone reports
    assert (tmp_path / "two" / name / "summary.json").exists()


def test_a_two_rank_run_resumes_exactly(tmp_path):
    args = [*BASE, "--method", "set", "--hidden", "256,256", "--epochs", "6"]
    whole = torchrun(*args, "--out_dir", tmp_path, "--run_name", "whole")
    assert whole.returncode == 0, whole.stderr
    run_dir, stderr = _interrupt_after_the_first_checkpoint(args, tmp_path, "cut")
    resume_lines = [line for line in stderr.splitlines() if line.startswith("interrupted (SIGTERM)")]
    assert resume_lines == [f"interrupted (SIGTERM); resume with: torchrun --standalone --nproc_per_node 2 cli.py train "
                            f"--resume {run_dir}"]  # rank 0 alone, with the command that resumes it
    resumed = torchrun("--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert _records(run_dir) == _records(tmp_path / "whole")


def test_resuming_with_another_number_of_ranks_is_refused(tmp_path):
    assert torchrun(*BASE, "--method", "set", "--epochs", "1", "--out_dir", tmp_path, "--run_name", "r").returncode == 0
    alone = run_cli("train", "--resume", tmp_path / "r")
    assert alone.returncode == 1
    assert alone.stderr.strip() == ("error: the checkpoint was written by 2 rank(s); resume it with 2 "
                                    "(torchrun --nproc_per_node 2), not 1")


def test_a_batch_the_ranks_cannot_share_is_refused_before_any_work(tmp_path):
    result = torchrun(*BASE, "--method", "set", "--batch_size", "33", "--out_dir", tmp_path)
    assert result.returncode != 0
    # every rank finds it; whichever prints before torchrun stops the others ("error:" from rank 0,
    # "error (rank 1):" from rank 1), the message is the one line
    messages = {line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("error")}
    assert messages == {"--batch_size 33 does not split over 2 ranks: launch a number of processes that divides it, "
                        "or choose a multiple of 2"}
    assert not any(tmp_path.iterdir())


def _step_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _tiny_transformer(folder: Path, batch_tokens: int = 400, steps: int = 40) -> list:
    from tests.data.test_translation_data import _corpus
    return ["--model", "transformer", "--data_dir", _corpus(folder, lines=80), "--d_model", "32", "--heads", "4",
            "--layers", "1", "--d_ff", "64", "--vocab_size", "60", "--train_steps", steps, "--warmup_steps", "10",
            "--batch_tokens", batch_tokens, "--update_interval", "20", "--eval_every", "20", "--lr_factor", "1",
            "--method", "rigl", "--sparsity", "0.5", "--wandb", "off", "--quiet"]


@pytest.mark.parametrize("recipe", ["transformer", "transformer-one-sentence-batches", "lm"])
def test_two_ranks_train_the_one_process_curve_of_the_step_recipes(tmp_path, monkeypatch, recipe):
    from tests.train.test_language import _text_file
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))  # the ranks prepare the BPE cache in turn
    common = ["--dropout", "0"]
    if recipe == "transformer":  # sentences of each token batch shared between the ranks
        args = [*_tiny_transformer(tmp_path / "data"), "--attention_dropout", "0"]
    elif recipe == "transformer-one-sentence-batches":  # 30 tokens: one sentence a batch, rank 1's part empty
        args = [*_tiny_transformer(tmp_path / "data", batch_tokens=30), "--attention_dropout", "0"]
    else:  # windows of each batch shared between the ranks
        args = ["--model", "lm", "--dataset", "text", "--text_file", _text_file(tmp_path / "data"), "--d_model", "32",
                "--heads", "4", "--layers", "2", "--d_ff", "64", "--context", "16", "--vocab_size", "60",
                "--batch_size", "8", "--train_steps", "60", "--warmup_steps", "10", "--eval_every", "20",
                "--update_interval", "10", "--lr", "0.01", "--method", "set", "--sparsity", "0.5", "--wandb", "off",
                "--quiet"]
    one = run_cli("train", *args, *common, "--out_dir", tmp_path / "one")
    two = torchrun(*args, *common, "--out_dir", tmp_path / "two")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    [single_dir], [double_dir] = (tmp_path / "one").iterdir(), (tmp_path / "two").iterdir()
    single, double = _step_records(single_dir), _step_records(double_dir)
    assert len(single) == len(double) >= 2
    for a, b in zip(single, double):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-5)
        assert b.get("topology_hash") == a.get("topology_hash")
    assert any("topology_hash" in r for r in double)
    assert (double_dir / "summary.json").exists() and (double_dir / "best.pt").exists()


def test_a_two_rank_transformer_with_dropout_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENET_DATA", str(tmp_path / "cache"))
    args = _tiny_transformer(tmp_path / "data", steps=200)  # dropout 0.1: each rank its own stream
    whole = torchrun(*args, "--out_dir", tmp_path, "--run_name", "whole")
    assert whole.returncode == 0, whole.stderr
    run_dir, _ = _interrupt_after_the_first_checkpoint(args, tmp_path, "cut")
    resumed = torchrun("--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    strip = lambda records: [{k: v for k, v in r.items() if "seconds" not in k} for r in records]  # noqa: E731
    assert strip(_step_records(run_dir)) == strip(_step_records(tmp_path / "whole"))
