"""The Transformer recipe end to end on a tiny corpus, its schedule, and its one-line data errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparsenet.train.translate import build_config, inoam
from tests.train.test_translation_data import _corpus

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
TINY = ["--model", "transformer", "--d_model", "32", "--heads", "4", "--layers", "1", "--d_ff", "64",
        "--vocab_size", "60", "--train_steps", "40", "--warmup_steps", "10", "--batch_tokens", "400",
        "--update_interval", "20", "--eval_every", "20", "--lr_factor", "1", "--sparsity", "0.5", "--wandb", "off",
        "--quiet"]


def test_tiny_run_trains_decodes_and_reports_bleu(tmp_path):
    root = _corpus(tmp_path / "data", lines=80)
    env = {"SPARSENET_DATA": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "cli.py", "train", *TINY, "--data_dir", str(root), "--out_dir",
                             str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**env, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("bleu", "sacrebleu", "sacrebleu_signature", "best_valid_loss", "train_steps", "train_seconds", "nnz",
                "dense_params"):
        assert key in summary
    assert summary["links"] < summary["dense_params"] and "tok:13a" in summary["sacrebleu_signature"]
    run_dir = Path(summary["run_dir"])
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert len((run_dir / "test.hyp").read_text().splitlines()) == 80


def test_inoam_rewarms_after_every_update():
    config = build_config(dataset="multi30k", warmup_steps=100, update_interval=50, lr_factor=1.0, d_model=64)
    assert inoam(150, config, rewarm=True) == 0.0
    assert abs(inoam(160, config, rewarm=True) - inoam(160, config, rewarm=False) * 10 / 20) < 1e-12
    assert inoam(175, config, rewarm=True) == inoam(175, config, rewarm=False)
    assert inoam(100, config, rewarm=False) > inoam(50, config, rewarm=False)  # warm-up then decay
    assert inoam(400, config, rewarm=False) < inoam(100, config, rewarm=False)


@pytest.mark.skipif(not (SHARED / "iwslt14-de-en").exists(), reason="../shared/data not present")
def test_iwslt14_without_training_data_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "cli.py", "train", "--model", "transformer", "--dataset", "iwslt14",
                             "--data_dir", str(SHARED), "--out_dir", str(tmp_path / "runs")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "iwslt14: train split missing" in lines[0] and "train.en" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_presets_and_foreign_options():
    cpu = build_config(dataset="multi30k", preset="cpu")
    assert cpu.d_model == 256 and cpu.train_steps == 3000
    assert build_config(dataset="iwslt14").batch_tokens == 10240
    with pytest.raises(ValueError, match="no preset 'cpu' for wmt17"):
        build_config(dataset="wmt17", preset="cpu")
    result = subprocess.run([sys.executable, "cli.py", "train", "--model", "transformer", "--epochs", "3"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--epochs do(es) not apply to --model transformer" in result.stderr
