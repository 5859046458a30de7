"""``python -m benchmarks.gpu_check OUT --device cpu --smoke``: the prepared GPU check in its CI form (tiny sizes
on the CPU), so that it cannot rot: every part's record holds the measured values it promises, and they agree
with hand counts; plus staging, the child processes' path, and the check's own bad input."""
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check
from sparsenet.data import load_vision
from sparsenet.sparse import link_count

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("gpu_check")
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", str(out), "--device", "cpu", "--smoke"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), out


@pytest.fixture(scope="module")
def supported() -> bool:
    return gpu_check.supports_device_and_precision(gpu_check.train_options(gpu_check.child_environment()[0]))


def test_every_part_is_recorded_with_its_status_and_files(smoke, supported):
    result, out = smoke
    assert list(result["parts"]) == list(gpu_check.PARTS.values())
    assert [part["part"] for part in result["parts"].values()] == list(gpu_check.PARTS)
    later = "passed" if supported else "unsupported"
    assert result["summary"] == {"device_tests": "passed", "memory": "passed", "bench": "passed", "parity": "passed",
                                 "translate_bf16": later, "torchrun": later}
    assert result["device"] == "cpu" and result["smoke"] is True and 0 < result["seconds"] <= result["budget_seconds"]
    assert result["environment"]["cuda_available"] is False and result["environment"]["packages"]["pytest"]
    markdown = (out / "gpu_check.md").read_text()
    assert markdown.startswith("# GPU check on cpu (smoke)") and "## memory: mlp_bf16" in markdown
    log = (out / "gpu_check.log").read_text()
    assert all(f"===== {name}" in log for name in gpu_check.PARTS.values())


def test_device_tests_count_what_pytest_ran(smoke):
    tests = smoke[0]["parts"]["device_tests"]
    assert tests["returncode"] == 0 and tests["tests"] > 0 and tests["passed"] == tests["tests"]
    assert tests["failures"] == tests["errors"] == 0 and tests["failed_tests"] == []
    assert "tests/sparse/test_kernels.py" in tests["files"] and not any(f.startswith("tests/cli/")
                                                                         for f in tests["files"])


def test_memory_rows_match_hand_counts_and_the_cpu_reference(smoke):
    memory = smoke[0]["parts"]["memory"]
    assert memory["sparsities"] == [0.9] and list(memory["models"]) == ["mlp", "mlp_bf16"]
    # SGD with momentum: values (or weights) + bias, their gradients and one momentum buffer, float32 in both
    # precisions (bf16 autocast keeps float32 master values); the output layer dense
    output = 4 * (10 * 32 + 10)
    dense = 3 * (4 * (32 * 784 + 32) + 4 * (32 * 32 + 32) + output)
    nnz = [link_count(32, 784, 0.1), link_count(32, 32, 0.1)]
    structure = 4 * (33 + 785) + 4 * (33 + 33) + 12 * sum(nnz)  # crow, crow_t; col, col_t, perm (int32)
    sparse = 3 * (4 * (nnz[0] + 32) + 4 * (nnz[1] + 32) + output) + structure
    for name, precision in (("mlp", "fp32"), ("mlp_bf16", "bf16")):
        mlp = memory["models"][name]
        assert mlp["precision"] == precision and mlp["sizes"] == {"in_features": 784, "hidden": [32, 32],
                                                                  "classes": 10}
        dense_rows, sparse_rows = mlp["rows"]
        assert (dense_rows["sparsity"], dense_rows["counted"]) == (0.0, dense)
        assert (sparse_rows["sparsity"], sparse_rows["counted"]) == (0.9, sparse)
        assert sparse_rows["counted_ratio"] == pytest.approx(sparse / dense)
        assert f"2 {precision} steps on cpu" in mlp["table"]
    for model in memory["models"].values():
        for row in model["rows"]:
            assert row["counted"] == row["cpu_counted"] and row["allocated_peak"] > 0 and row["step_seconds"] > 0
        assert model["rows"][1]["allocated_peak_ratio"] < 1 and "| 0.9 |" in model["table"]
    assert all(memory["checks"].values()) and all(memory["targets"].values())
    assert set(memory["targets"]) == {"mlp_allocated_ratio_within_5_points_of_cpu"}  # fp32 runs only


def test_bench_rows_cover_every_shape_sparsity_and_form(smoke):
    bench = smoke[0]["parts"]["bench"]
    rows = bench["rows"]
    assert [(r["shape"], r["rows"], r["sparsity"]) for r in rows] == [
        (shape, batch, s) for shape, batch in (("64x32", 8), ("48x40", 4)) for s in gpu_check.BENCH_SPARSITIES]
    for row in rows:
        out_f, in_f = map(int, row["shape"].split("x"))
        assert row["nnz"] == link_count(out_f, in_f, 1 - row["sparsity"]) and row["tf32_ms"] is None
        assert min(row["dense_ms"], row["bf16_ms"], row["masked_ms"], row["sparse_ms"], row["sparse_bf16_ms"]) > 0
        assert row["masked_bytes"] == row["dense_bytes"] + out_f * in_f
    assert "(wall clock)" in bench["table"] and "targets" not in bench  # the 8192² targets: CUDA only


def test_parity_compares_every_step_and_update(smoke):
    parity = smoke[0]["parts"]["parity"]
    steps_per_epoch = math.ceil(load_vision("digits").train_x.shape[0] / 32)
    assert parity["devices"] == ["cpu", "cpu"] and parity["epochs"] == 2
    assert parity["steps"] == 2 * steps_per_epoch and parity["updates"] == 1
    assert parity["cpu_hashes"] == parity["device_hashes"] and len(set(parity["cpu_hashes"])) == 2
    assert parity["max_abs_loss_difference"] == 0.0 and parity["first_differing_update"] is None
    assert parity["final_loss"]["cpu"] == parity["final_loss"]["device"] < math.log(10)


def test_the_cli_runs_report_their_summary_or_that_the_checkout_lacks_them(smoke, supported):
    parts = smoke[0]["parts"]
    if not supported:
        for name in ("translate_bf16", "torchrun"):
            assert parts[name]["error"] == ("not supported by this checkout: cli.py train has no --device/--precision "
                                            "options")
        return
    translate = parts["translate_bf16"]
    assert translate["summary"]["train_steps"] == 4 and translate["summary"]["seconds_per_step"] > 0
    assert math.isfinite(translate["summary"]["best_valid_loss"]) and "sacrebleu" in translate["summary"]
    torchrun = parts["torchrun"]
    assert torchrun["returncode"] == 0 and 0 <= torchrun["summary"]["final_test_accuracy"] <= 1
    assert "nccl_used" not in torchrun["checks"] and torchrun["nccl_info_lines"] == 0  # gloo on the CPU


@pytest.mark.parametrize("help_text, supported", [
    ("  --device (text, default auto)\n      where\n  --precision (text, default fp32)\n", True),
    ("  --device (text, default auto)\n", False),
    ("  --seed (int)\n      see --device and --precision in the docs\n", False),
    ("", False),
])
def test_support_is_read_off_the_options_list(help_text, supported):
    assert gpu_check.supports_device_and_precision(help_text) is supported


def test_stage_copies_multi30k_and_the_missing_packages(tmp_path):
    shared = tmp_path / "shared"
    for split in gpu_check.MULTI30K_FILES:
        for language in ("en", "de"):
            (shared / "multi30k").mkdir(parents=True, exist_ok=True)
            (shared / "multi30k" / f"{split}.{language}.gz").write_bytes(f"{split} {language}".encode())
    target = tmp_path / "stage"
    gpu_check.stage(shared, target)
    assert sorted(p.name for p in (target / "data" / "multi30k").iterdir()) == sorted(
        f"{split}.{language}.gz" for split in gpu_check.MULTI30K_FILES for language in ("en", "de"))
    assert (target / "data" / "multi30k" / "val.de.gz").read_bytes() == b"val de"
    assert all((target / "site" / name / "__init__.py").is_file() for name in gpu_check.STAGED_PACKAGES)


def test_stage_without_the_data_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: .*train\.en\.gz not found; pass --shared DATA_DIR[^\n]*$"):
        gpu_check.stage(tmp_path / "nowhere", tmp_path / "stage")


def test_the_staged_packages_go_on_the_path_only_where_one_is_missing(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    environment, staged = gpu_check.child_environment(tmp_path)
    assert staged == [] and environment["PYTHONPATH"].split(":")[0] == str(ROOT)
    assert str(tmp_path / "site") not in environment["PYTHONPATH"].split(":")
    monkeypatch.setattr(gpu_check, "STAGED_PACKAGES", ("fire", "no_such_package_here"))
    environment, staged = gpu_check.child_environment(tmp_path)
    assert staged == ["no_such_package_here"] and environment["PYTHONPATH"].split(":")[:2] == [str(ROOT),
                                                                                               str(tmp_path / "site")]


@pytest.mark.parametrize("arguments, message", [
    (["OUT", "--parts", "a,z"], "unknown parts ['z']"),
    ([], "give OUT_DIR (or --stage)"),
    (["OUT", "--device", "tpu"], "unknown device 'tpu'"),
    pytest.param(["OUT", "--device", "cuda"], "--device cuda: this machine has no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")),
])
def test_bad_arguments_stop_before_any_work(tmp_path, arguments, message):
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", *arguments], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "OUT").exists()


def test_a_part_over_its_time_is_stopped_with_its_workers_and_recorded(tmp_path):
    """The memory part's fresh worker processes are in its process group: the stop ends them too, so the check
    returns at once instead of waiting for them; the part after it is recorded as having no time left."""
    out = tmp_path / "out"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", str(out), "--device", "cpu", "--smoke",
                             "--parts", "b,c", "--budget", "4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 60
    parts = json.loads((out / "gpu_check.json").read_text())["parts"]
    assert parts["memory"]["status"] == "timeout" and parts["memory"]["error"] == "stopped after 4 s"
    assert 4 <= parts["memory"]["seconds"] < 30
    assert parts["bench"] == {"part": "c", "command": parts["bench"]["command"], "status": "timeout",
                              "error": "no time left in the budget"}
