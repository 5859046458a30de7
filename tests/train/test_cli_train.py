"""``python cli.py train``: the offline default, --help, and one-line errors that leave no run directory."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_default_run_is_offline_digits_chts(tmp_path):
    result = run_cli("train", "--out_dir", str(tmp_path), "--wandb", "off", "--quiet")
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


def test_help_lists_every_option_of_both_recipes_with_its_text():
    from sparsenet.train import CONFIGS
    from sparsenet.train.config import field_help, option_fields
    result = subprocess.run([sys.executable, "cli.py", "train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for config_class in CONFIGS.values():
        for name in set(option_fields(config_class)) - {"model"}:
            assert f"--{name} (" in text, name
            assert " ".join(field_help(config_class, name).split()) in text, name
    for cli_only in ("--model", "--resume", "--restart"):
        assert cli_only in text


@pytest.mark.parametrize("args,message", [  # the whole table runs in process: tests/cli/test_bad_input.py
    (("--sparsity", "abc"), "--sparsity must be a number, got 'abc'"),
    (("--dataset", "mnist", "--data_dir", "/nonexistent/sparsenet"), "mnist: missing train-images-idx3-ubyte.gz"),
])
def test_bad_input_is_one_line_on_stderr_and_writes_nothing(tmp_path, args, message):
    result = run_cli("train", *args, "--out_dir", str(tmp_path / "runs"), "--wandb", "off")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_wandb_mode_and_resume_with_options(tmp_path):
    result = run_cli("train", "--wandb", "bogus", "--out_dir", str(tmp_path / "runs"))
    assert result.returncode != 0 and "unknown wandb mode 'bogus'" in result.stderr
    assert not (tmp_path / "runs").exists()
    done = run_cli("train", "--epochs", "1", "--out_dir", str(tmp_path / "runs"), "--wandb", "off", "--quiet")
    run_dir = json.loads(done.stdout.strip().splitlines()[-1])["run_dir"]
    result = run_cli("train", "--resume", run_dir, "--epochs", "3")
    assert result.returncode != 0 and "--resume takes no other options than --device" in result.stderr
    moved = run_cli("train", "--resume", run_dir, "--device", "cpu")  # a run continues on the device given
    first, again = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (done, moved))
    assert again["device"] == "cpu" and again["final_test_accuracy"] == first["final_test_accuracy"]


def test_density_decay_methods_end_at_the_requested_sparsity(tmp_path):
    for method in ("mest", "chtss"):
        result = run_cli("train", "--method", method, "--epochs", "8", "--out_dir", str(tmp_path), "--wandb", "off", "--quiet")
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["links"] == round(0.1 * 64 * 128) + 2 * round(0.1 * 128 * 128), method


def test_unknown_option_stops_in_one_line_before_any_work(tmp_path):
    started = time.perf_counter()
    result = run_cli("train", "--dataset", "mnist", "--epoch", "1", "--out_dir", str(tmp_path / "runs"))  # a 100-epoch run
    assert result.returncode == 1 and time.perf_counter() - started < 30
    assert result.stderr.strip() == "error: unknown option --epoch for --model mlp; did you mean --epochs?"
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written
