"""The MLP recipe on the tiny data set shipped in tests/fixtures: every method, determinism, exact resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenet.evolution import make_method
from sparsenet.train.checkpoint import load_checkpoint
from sparsenet.train.classify import build_config, train
from sparsenet.train.config import METHOD_NAMES
from tests.conftest import TINY_DATA

ROOT = Path(__file__).resolve().parents[2]
TINY = str(TINY_DATA)
SHARED = ROOT.parent / "shared" / "data"


def _config(tmp_path, **overrides):
    options = dict(dataset="mnist", data_dir=TINY, hidden=(64, 64), sparsity=0.8, epochs=2, out_dir=str(tmp_path),
                   wandb="off", quiet=True)
    return build_config(**{**options, **overrides})


def _losses(run_dir):
    return [json.loads(line)["train_loss"] for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def _metrics(run_dir) -> list[dict]:
    """The run's metric lines without their measurements of the machine (timings, the process's peak RSS),
    which differ between otherwise identical runs."""
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k and k != "peak_rss_bytes"}
            for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_trains_and_records(tmp_path, method):
    summary = train(_config(tmp_path, method=method, update_interval=1))  # CHT's MLP default is every 3 epochs
    run_dir = Path(summary["run_dir"])
    assert summary["best_test_accuracy"] > 0.5  # 4 separable classes (chance 0.25)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    dynamic = make_method(method).removal is not None if method != "fc" else False
    # a dynamic method updated the topology after epoch 1 (none after the last epoch), a static one never
    assert ("removed" in records[0]) == dynamic and "removed" not in records[-1]
    if dynamic:
        assert records[0]["removed"] > 0
        if make_method(method).density_schedule == "constant":  # regrowth refills exactly what was removed
            assert records[0]["regrown"] == records[0]["removed"] and records[0]["links"] == records[1]["links"]
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert json.loads((run_dir / "config.json").read_text())["method"] == method
    assert (run_dir / "checkpoint.pt").exists()
    if method == "fc":
        assert summary["links"] == 0 and summary["nnz"] == summary["dense_params"]
    else:
        assert summary["nnz"] < summary["dense_params"]


def _final_state(run_dir) -> dict:
    """The last checkpoint's model tensors, optimizer state tensors and engine state, flattened."""
    checkpoint = load_checkpoint(Path(run_dir) / "checkpoint.pt")
    state = {f"model.{k}": v for k, v in checkpoint["model"].items()}
    for index, entry in checkpoint["optimizer"]["state"].items():
        state.update({f"optimizer.{index}.{k}": v for k, v in entry.items() if torch.is_tensor(v)})
    engine = checkpoint["engine"]
    state.update({"engine.generator": engine["generator"], "engine.flagged": torch.tensor(engine["flagged"]),
                  "engine.stopped": torch.tensor(engine["stopped"])})
    return state


def _assert_same_state(a, b) -> None:
    first, second = _final_state(a), _final_state(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_same_seed_same_curve_and_topology(tmp_path):
    a = train(_config(tmp_path, run_name="a", epochs=3))
    b = train(_config(tmp_path, run_name="b", epochs=3))
    c = train(_config(tmp_path, run_name="c", epochs=3, seed=1))
    assert _losses(a["run_dir"]) == _losses(b["run_dir"]) != _losses(c["run_dir"])
    _assert_same_state(a["run_dir"], b["run_dir"])  # every layer's links, values, momenta, engine RNG
    with pytest.raises(AssertionError):
        _assert_same_state(a["run_dir"], c["run_dir"])


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    base = ["--dataset", "mnist", "--data_dir", TINY, "--hidden", "256,256", "--sparsity", "0.5", "--epochs", "3",
            "--out_dir", str(tmp_path), "--wandb", "off", "--quiet"]
    subprocess.run([sys.executable, "cli.py", "train", *base, "--run_name", "whole"], cwd=ROOT, check=True,
                   capture_output=True)
    for attempt in range(5):
        name = f"killed{attempt}"
        process = subprocess.Popen([sys.executable, "cli.py", "train", *base, "--run_name", name], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = tmp_path / name / "checkpoint.pt"
        while process.poll() is None and not checkpoint.exists():
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if not (tmp_path / name / "summary.json").exists():
            break
    else:
        pytest.skip("the run always finished before it could be killed")
    assert not (tmp_path / name / "summary.json").exists()
    subprocess.run([sys.executable, "cli.py", "train", "--resume", str(tmp_path / name)], cwd=ROOT, check=True,
                   capture_output=True)
    assert _losses(tmp_path / name) == _losses(tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    resumed = json.loads((tmp_path / name / "summary.json").read_text())
    assert resumed["final_test_accuracy"] == whole["final_test_accuracy"]
    assert resumed["links"] == whole["links"]
    _assert_same_state(tmp_path / name, tmp_path / "whole")  # topology, values, optimizer and engine state


@pytest.mark.skipif(not (SHARED / "mnist").exists(), reason="../shared/data/mnist not present")
def test_one_real_mnist_epoch_of_chts(tmp_path):
    summary = train(build_config(dataset="mnist", data_dir=str(SHARED), method="chts", epochs=1,
                                 out_dir=str(tmp_path), wandb="off", quiet=True))
    assert summary["best_test_accuracy"] >= 0.90
    assert summary["links"] == round(0.01 * 1568 * 784) + 2 * round(0.01 * 1568 * 1568)


def test_wandb_offline_run_is_recorded(tmp_path):
    summary = train(_config(tmp_path, method="set", epochs=1, wandb="offline"))
    assert any((Path(summary["run_dir"]) / "wandb").glob("offline-run-*"))


def test_presets_follow_the_paper_and_yield_to_options():
    assert build_config(dataset="fashion_mnist", method="chts").engine_method().removal == "ri_soft"
    assert build_config(dataset="fashion_mnist", method="chts", removal="wm_soft").engine_method().removal == "wm_soft"
    assert build_config(dataset="mnist", method="chts").engine_method().removal == "wm_soft"
    assert build_config(dataset="fashion_mnist", method="set").engine_method().removal == "wm_signed"
    digits = build_config()
    assert digits.hidden == (128, 128, 128) and digits.epochs == 30 and digits.sparsity == 0.9
    assert build_config(dataset="mnist").hidden == (1568, 1568, 1568) and build_config(dataset="mnist").epochs == 100


def test_static_training_starts_from_another_runs_final_topology(tmp_path):
    chts = train(_config(tmp_path, method="chts", run_name="chts"))
    static = train(_config(tmp_path, method="static", init_topology=chts["run_dir"], run_name="sst", epochs=1))
    found = {k: v for k, v in load_checkpoint(Path(chts["run_dir"]) / "checkpoint.pt")["model"].items()
             if k.endswith((".crow", ".col"))}
    kept = load_checkpoint(Path(static["run_dir"]) / "checkpoint.pt")["model"]
    sparse_layers = [k for k in kept if k.endswith(".values")]
    assert len(found) == 2 * len(sparse_layers) > 0 and all(torch.equal(kept[k], v) for k, v in found.items())
    assert static["links"] == chts["links"]
    fresh = train(_config(tmp_path, method="static", run_name="fresh", epochs=1))
    assert not all(torch.equal(load_checkpoint(Path(fresh["run_dir"]) / "checkpoint.pt")["model"][k], v)
                   for k, v in found.items())
    with pytest.raises(ValueError, match="--init_topology needs a sparse method"):
        _config(tmp_path, method="fc", init_topology=chts["run_dir"])
    with pytest.raises(ValueError, match="no such run directory"):
        _config(tmp_path, method="static", init_topology=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"its layers have the sizes \(784, 64, 64, 10\), this run's are "
                                         r"\(784, 64, 64, 64, 10\)"):  # refused by the config, before any work
        _config(tmp_path, method="static", init_topology=chts["run_dir"], hidden=(64, 64, 64), run_name="x")


def test_resume_after_a_crash_between_metrics_and_checkpoint_keeps_one_line_per_epoch(tmp_path, monkeypatch):
    """Epoch 2's metrics line is written, then the run dies before epoch 2's checkpoint: the resumed run
    redoes epoch 2 from epoch 1's checkpoint and its metrics equal an uninterrupted run's, line for line."""
    from sparsenet.train import loop
    whole = train(_config(tmp_path, run_name="whole", epochs=3))
    real_save, saves = loop.save_checkpoint, []

    def die_at_second_checkpoint(path, state):
        saves.append(Path(path).name)
        if saves.count("checkpoint.pt") == 2:
            raise KeyboardInterrupt
        real_save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", die_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, run_name="cut", epochs=3))
    assert len(_losses(tmp_path / "cut")) == 2  # epoch 2's line is there, its checkpoint is not
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    train(None, resume=tmp_path / "cut")
    assert _metrics(tmp_path / "cut") == _metrics(whole["run_dir"]) and len(_metrics(whole["run_dir"])) == 3
