"""``python cli.py train``: the offline default, --help, and one-line errors that leave no run directory."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_default_run_is_offline_digits_chts(tmp_path):
    result = _run("--out_dir", str(tmp_path), "--wandb", "off", "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["dataset"] == "digits" and summary["method"] == "chts" and summary["sparsity"] == 0.9
    assert summary["best_test_accuracy"] > 0.9
    assert "at the best validation epoch" in lines[-2] and "links" in lines[-2]
    assert summary["test_accuracy_at_best_valid"] > 0.9 and summary["valid_fraction"] == 0.1
    for key in ("model", "dataset", "method", "sparsity", "seed", "epochs", "best_test_accuracy",
                "final_test_accuracy", "best_valid_accuracy", "best_valid_epoch", "train_seconds", "nnz", "dense_params"):
        assert key in summary


def test_help_lists_every_option():
    result = subprocess.run([sys.executable, "cli.py", "train", "--help"], cwd=ROOT, capture_output=True, text=True,
                            env={"PAGER": "cat", "PATH": "/usr/bin:/bin"})
    text = result.stdout + result.stderr
    for option in ("--dataset", "--method", "--sparsity", "--epochs", "--seed", "--init", "--resume", "--download",
                   "--data_dir", "--wandb", "--regrowth", "--removal"):
        assert option in text


@pytest.mark.parametrize("args,message", [
    (("--dataset", "cifar"), "unknown dataset 'cifar'"),
    (("--method", "snip"), "unknown method 'snip'"),
    (("--sparsity", "1.0"), "sparsity must be in [0, 1)"),
    (("--sparsity", "-0.1"), "sparsity must be in [0, 1)"),
    (("--epochs", "0"), "epochs must be a positive integer"),
    (("--dataset", "mnist", "--data_dir", "/nonexistent/sparsenet"), "mnist: missing train-images-idx3-ubyte.gz"),
    (("--model", "resnet"), "unknown model 'resnet'"),
    (("--resume", "/nonexistent/run"), "no checkpoint.pt there"),
    (("--regrowth", "ch4"), "unknown regrowth 'ch4'"),
    (("--sparsity", "abc"), "--sparsity must be a number, got 'abc'"),
    (("--seed", "abc"), "--seed must be an integer, got 'abc'"),
    (("--epochs", "1.5"), "--epochs must be an integer, got 1.5"),
    (("--exponent_start", "abc"), "--exponent_start must be a number, got 'abc'"),
    (("--model", "transformer", "--dataset", "multi30k", "--lr_factor", "fast"), "--lr_factor must be a number"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    extra = () if args[0] == "--resume" else ("--out_dir", str(tmp_path / "runs"), "--wandb", "off")
    result = _run(*args, *extra)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_wandb_mode_and_resume_with_options(tmp_path):
    result = _run("--wandb", "bogus", "--out_dir", str(tmp_path / "runs"))
    assert result.returncode != 0 and "unknown wandb mode 'bogus'" in result.stderr
    assert not (tmp_path / "runs").exists()
    done = _run("--epochs", "1", "--out_dir", str(tmp_path / "runs"), "--wandb", "off", "--quiet")
    run_dir = json.loads(done.stdout.strip().splitlines()[-1])["run_dir"]
    result = _run("--resume", run_dir, "--epochs", "3")
    assert result.returncode != 0 and "--resume takes no other options" in result.stderr


def test_density_decay_methods_end_at_the_requested_sparsity(tmp_path):
    for method in ("mest", "chtss"):
        result = _run("--method", method, "--epochs", "8", "--out_dir", str(tmp_path), "--wandb", "off", "--quiet")
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["links"] == round(0.1 * 64 * 128) + 2 * round(0.1 * 128 * 128), method


@pytest.mark.parametrize("argv, hint", [
    (["train", "--epoch", "1"], "--epochs"),
    (["train", "--sparsty=0.5"], "--sparsity"),
    (["inspect", "--shapes", "8,8"], "--shape"),
])
def test_unknown_option_stops_in_one_line_before_any_work(tmp_path, argv, hint):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "cli.py", *argv, "--out_dir", str(tmp_path / "runs")]
                            if argv[0] == "train" else [sys.executable, "cli.py", *argv], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and time.perf_counter() - started < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown option" in lines[0] and hint in lines[0]
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written


@pytest.mark.parametrize("setup, args, message", [
    (None, ("--run_name", "../outside"), "--run_name must be a plain folder name inside --out_dir, got '../outside'"),
    (None, ("--run_name", "a/b"), "--run_name must be a plain folder name inside --out_dir, got 'a/b'"),
    ("file", ("--out_dir", "{tmp}/taken"), "--out_dir {tmp}/taken: {tmp}/taken is a file, not a folder"),
    ("file", ("--out_dir", "{tmp}/taken/deeper"), "--out_dir {tmp}/taken/deeper: {tmp}/taken is a file, not a folder"),
])
def test_bad_output_folder_is_one_line_before_any_work(tmp_path, setup, args, message):
    if setup == "file":
        (tmp_path / "taken").write_text("a file where the runs would go")
    args = tuple(a.format(tmp=tmp_path) for a in args)
    extra = () if "--out_dir" in args else ("--out_dir", str(tmp_path / "runs"))
    result = _run(*args, *extra, "--wandb", "off", "--quiet")
    assert result.returncode == 1 and result.stderr.strip() == f"error: {message.format(tmp=tmp_path)}"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["taken"] if setup == "file" else [])
    assert not (tmp_path.parent / "outside").exists()
