"""Sweeps: the YAMLs in sweeps/ are valid W&B sweeps of valid train runs; expansion; the local runner
(finish, skip, resume, record failures, dry run) on a tiny 2x2 grid; W&B is not touched when logged out."""
import itertools
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from fire.parser import DefaultParseValue

from sparsenet.experiments import sweeps
from sparsenet.topology import WEIGHT_INITS
from sparsenet.train import CONFIGS, RECIPES, check_option_names
from tests.conftest import TINY_DATA

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
OPTIONS = sweeps.train_options()
COMMAND = ["${env}", "${interpreter}", "${program}", "train", "${args}"]
SMOKE = "smoke_digits"  # the one sweep that is not a paper table: a quick offline check of the pipeline
TINY = {"dataset": {"value": "mnist"}, "data_dir": {"value": str(TINY_DATA)},
        "hidden": {"value": "32,32"}, "epochs": {"value": 1}, "sparsity": {"value": 0.8}}


def _spec(search="grid", **parameters):
    return {"program": "cli.py", "method": search, "parameters": parameters}


# ----------------------------------------------------------------------------------------------- sweep files

def test_the_paper_sweeps_and_their_cpu_twins_exist():
    names = {path.stem for path in SWEEPS}
    paper = {"mlp_99", "transformer_90", "transformer_95", "ablation_init", "ablation_init_bsw",
             "ablation_init_bsf_fixes", "ablation_removal", "ablation_regrowth", "zeta", "sst_vs_chts"}
    results = {"results_mlp_99", "results_mlp_99_one_seed", "results_mlp_99_cht_authors", "results_mlp_whole_train",
               "results_cht_anp", "results_cht_anp_fashion_mnist", "results_transformer_multi30k",
               "results_transformer_multi30k_one_seed", "results_lm", "results_lm_dense", "results_lm_dense_kaiming",
               "results_lm_static", "results_lm_set_swi", "results_scale_chts", "results_scale_set"}
    assert paper | {name + "_cpu" for name in paper} | {SMOKE} | results == names


def test_results_holds_no_scripts_its_queues_are_sweeps():
    assert not [path.name for path in (ROOT / "results").rglob("*") if path.suffix in (".sh", ".py")]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_is_a_wandb_sweep_of_valid_train_runs(path, tmp_path):
    spec = sweeps.load_sweep(path)
    sweeps.check_sweep(spec, OPTIONS)
    assert spec["program"] == "cli.py" and spec["command"] == COMMAND and spec["project"] == "sparsenet"
    assert spec["name"] == path.stem
    if path.stem.startswith("results_"):  # a results page's queue names the page and its command
        page = re.search(r"results/\w+\.md", path.read_text().splitlines()[0]).group()
        assert (ROOT / page).is_file() and f"python cli.py sweep sweeps/{path.name}" in path.read_text()
    else:
        assert path.stem == SMOKE or "method.md §" in spec["description"]  # a paper sweep cites the paper's result
    runs = sweeps.expand(spec)
    assert len({sweeps.run_name(params) for params in runs}) == len(runs)
    for params in runs:
        options = {k: DefaultParseValue(str(v)) for k, v in params.items()}  # as the run's command line gives them
        if "init_topology" in params:
            options["init_topology"] = str(tmp_path)
        model = options.pop("model", "mlp")
        check_option_names(CONFIGS, model, options)
        RECIPES[model].build_config(model=model, **options)
    assert spec["metric"]["name"] == {"mlp": "best_test_accuracy", "transformer": "bleu", "lm": "best_valid_ppl"}[model]


def test_sst_sources_are_the_run_directories_of_the_mlp_99_chts_runs():
    for suffix in ("", "_cpu"):
        sources = sweeps.load_sweep(ROOT / "sweeps" / f"sst_vs_chts{suffix}.yaml")["parameters"]["init_topology"]
        mlp = sweeps.load_sweep(ROOT / "sweeps" / f"mlp_99{suffix}.yaml")
        chts = [sweeps.run_name(p) for p in sweeps.expand(mlp) if p["method"] == "chts" and p["dataset"] == "mnist"]
        assert sources["values"] == [f"runs/mlp_99{suffix}/{name}" for name in chts]


# ------------------------------------------------------------------------------------------------ load, check

def test_load_sweep_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="no sweep file"):
        sweeps.load_sweep(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grid\nparameters: {seed: [0, 1\n")
    with pytest.raises(ValueError, match=r"not valid YAML \(line \d+\)") as error:
        sweeps.load_sweep(bad)
    assert "\n" not in str(error.value)


def test_typo_parameter_names_the_closest_option():
    spec = sweeps.load_sweep(ROOT / "sweeps" / "mlp_99.yaml")
    spec["parameters"]["sparsty"] = spec["parameters"].pop("sparsity")
    with pytest.raises(ValueError, match="unknown parameter 'sparsty'.*did you mean 'sparsity'"):
        sweeps.check_sweep(spec, OPTIONS)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(metrics={}), "unknown sweep key 'metrics'.*did you mean 'metric'"),
    (lambda s: s.pop("program"), "no 'program'"),
    (lambda s: s.update(method="hyperband"), "unknown sweep method"),
    (lambda s: s.update(method="bayes"), "bayes sweep needs a metric"),
    (lambda s: s.update(command=["python", "cli.py", "${args}"]), "'command' must be a list with train"),
    (lambda s: s["parameters"].update(seed={"value": 0, "values": [0, 1]}), "exactly one of value, values"),
    (lambda s: s["parameters"].update(seed=[0, 1]), "exactly one of value, values"),
    (lambda s: s["parameters"].update(seed={"values": []}), "non-empty list"),
    (lambda s: s["parameters"].update(zeta={"distribution": "uniform", "min": 0.1, "max": 0.5}),
     "grid sweep takes value or values"),
    (lambda s: s["parameters"].update(zeta={"distribution": "unifrom", "min": 0.1, "max": 0.5}),
     "did you mean 'uniform'"),
    (lambda s: s["parameters"].update(zeta={"values": [0.1, 0.2], "probabilities": [0.5, 0.6]}), "summing to 1"),
])
def test_check_sweep_rejects(change, message):
    spec = _spec(seed={"values": [0, 1]})
    change(spec)
    with pytest.raises(ValueError, match=message):
        sweeps.check_sweep(spec, OPTIONS)


def test_random_sweep_with_distributions_is_valid():
    spec = _spec("random", zeta={"min": 0.1, "max": 0.5}, epochs={"min": 1, "max": 5},
                 lr={"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1})
    sweeps.check_sweep(spec, OPTIONS)
    assert sweeps.parameter_distribution("epochs", spec["parameters"]["epochs"]) == "int_uniform"
    assert sweeps.parameter_distribution("zeta", spec["parameters"]["zeta"]) == "uniform"


# ---------------------------------------------------------------------------------------------------- expand

def test_grid_is_the_full_product_in_a_stable_order():
    spec = sweeps.load_sweep(ROOT / "sweeps" / "mlp_99.yaml")
    runs = sweeps.expand(spec)
    axes = [p["values"] for p in spec["parameters"].values() if "values" in p]
    assert len(runs) == math.prod(len(axis) for axis in axes) == 54
    assert [(r["dataset"], r["method"], r["seed"]) for r in runs] == list(itertools.product(*axes))
    assert all(r["sparsity"] == 0.99 for r in runs)
    assert sweeps.expand(spec) == runs
    assert sweeps.expand(spec, count=5) == runs[:5]


def test_random_draws_are_seeded_and_follow_their_distributions():
    spec = _spec("random", zeta={"distribution": "uniform", "min": 0.1, "max": 0.5},
                 epochs={"distribution": "int_uniform", "min": 1, "max": 5},
                 lr={"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                 batch_size={"distribution": "q_uniform", "min": 16, "max": 128, "q": 16},
                 momentum={"distribution": "normal", "mu": 0.9, "sigma": 0.01},
                 method={"values": ["set", "chts"], "probabilities": [0.0, 1.0]},
                 seed={"values": [0, 1, 2]}, dataset={"value": "mnist"})
    runs = sweeps.expand(spec, count=300, seed=3)
    assert runs == sweeps.expand(spec, count=300, seed=3) != sweeps.expand(spec, count=300, seed=4)
    assert all(0.1 <= r["zeta"] <= 0.5 and 1e-4 <= r["lr"] <= 1e-1 for r in runs)
    assert {r["epochs"] for r in runs} == {1, 2, 3, 4, 5} and {r["seed"] for r in runs} == {0, 1, 2}
    assert all(isinstance(r["batch_size"], int) and r["batch_size"] % 16 == 0 for r in runs)
    assert sum(r["lr"] < 1e-2 for r in runs) > 150  # log-uniform: 2 of 3 decades below 1e-2
    assert abs(sum(r["momentum"] for r in runs) / len(runs) - 0.9) < 0.005
    assert {r["method"] for r in runs} == {"chts"} and {r["dataset"] for r in runs} == {"mnist"}


def test_random_needs_a_count_and_refuses_unsupported_distributions():
    with pytest.raises(ValueError, match="needs a count"):
        sweeps.expand(_spec("random", seed={"values": [0, 1]}))
    assert len(sweeps.expand({**_spec("random", seed={"values": [0, 1]}), "run_cap": 7})) == 7
    with pytest.raises(ValueError, match="beta distribution is not drawn locally"):
        sweeps.expand(_spec("random", zeta={"distribution": "beta", "a": 2, "b": 3}), count=2)


def test_run_name_is_readable_deterministic_and_hashed():
    params = {"dataset": "mnist", "method": "chts", "seed": 0, "sparsity": 0.99}
    name = sweeps.run_name(params)
    assert name.startswith("mnist-chts-seed0-sparsity0.99-") and len(name.rsplit("-", 1)[1]) == 8
    assert sweeps.run_name(dict(reversed(params.items()))) == name
    assert sweeps.run_name({**params, "seed": 1}) != name
    assert sweeps.run_name({**params, "init_topology": "runs/a/b"}).count("/") == 0


# ---------------------------------------------------------------------------------------------- local runner

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """The 2x2 grid (set/static x seed 0/1) of 1-epoch MLP runs, run once with two workers."""
    runs_dir = tmp_path_factory.mktemp("runs")
    spec = _spec(**TINY, method={"values": ["set", "static"]}, seed={"values": [0, 1]})
    lines = []
    counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=runs_dir, workers=2, wandb="off", printer=lines.append)
    return spec, runs_dir, counts, lines


def _run_dirs(spec, runs_dir):
    return [Path(runs_dir) / "tiny" / sweeps.run_name(p) for p in sweeps.expand(spec)]


def test_local_runs_all_finish(tiny_sweep):
    spec, runs_dir, counts, lines = tiny_sweep
    assert counts == {"total": 4, "skipped": 0, "finished": 4, "failed": 0}
    for run_dir in _run_dirs(spec, runs_dir):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["epochs"] == 1 and summary["method"] in ("set", "static")
        assert (runs_dir / "tiny" / "logs" / f"{run_dir.name}.log").exists()
    assert not (runs_dir / "tiny" / "failed.jsonl").exists()
    assert "4 finished, 0 failed" in lines[-1]


def test_second_call_skips_finished_runs(tiny_sweep):
    spec, runs_dir, _, _ = tiny_sweep
    counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=runs_dir, wandb="off", printer=lambda line: None)
    assert counts == {"total": 4, "skipped": 4, "finished": 0, "failed": 0}


def test_run_without_summary_resumes_from_its_checkpoint(tiny_sweep):
    spec, runs_dir, _, _ = tiny_sweep
    run_dir = _run_dirs(spec, runs_dir)[2]
    (run_dir / "summary.json").unlink()
    lines = []
    sweeps.run_local(spec, "tiny.yaml", runs_dir=runs_dir, dry_run=True, wandb="off", printer=lines.append)
    assert [shlex.split(line)[2:] for line in lines] == [["train", f"--resume={run_dir}"]]
    counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=runs_dir, wandb="off", printer=lambda line: None)
    assert counts == {"total": 4, "skipped": 3, "finished": 1, "failed": 0}
    assert (run_dir / "summary.json").exists()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # continued, not retrained


def test_failing_run_is_recorded_and_the_others_finish(tmp_path):
    spec = _spec(**{**TINY, "sparsity": {"values": [0.8, 1.5]}}, method={"value": "set"})
    lines = []
    counts = sweeps.run_local(spec, "bad.yaml", runs_dir=tmp_path, workers=2, wandb="off", printer=lines.append)
    assert counts == {"total": 2, "skipped": 0, "finished": 1, "failed": 1}
    [record] = [json.loads(line) for line in (tmp_path / "bad" / "failed.jsonl").read_text().splitlines()]
    assert record["params"]["sparsity"] == 1.5 and record["returncode"] != 0
    assert "sparsity must be in" in record["error"] and Path(record["log"]).exists()
    assert (tmp_path / "bad" / sweeps.run_name({**record["params"], "sparsity": 0.8}) / "summary.json").exists()
    assert any(line.startswith("failed: ") for line in lines)


def test_dry_run_prints_every_command_and_creates_nothing(tmp_path):
    spec = sweeps.load_sweep(ROOT / "sweeps" / "mlp_99_cpu.yaml")
    lines = []
    counts = sweeps.run_local(spec, "sweeps/mlp_99_cpu.yaml", runs_dir=tmp_path / "runs", dry_run=True,
                              extra_args=["--data_dir=/data"], printer=lines.append)
    assert counts == {"total": 12, "skipped": 0, "finished": 0, "failed": 0} and len(lines) == 12
    first = shlex.split(lines[0])
    out_dir = tmp_path / "runs" / "mlp_99_cpu"
    assert first[:3] == [sys.executable, str(ROOT / "cli.py"), "train"]
    assert first[3:] == ["--dataset=mnist", "--method=fc", "--seed=0", "--sparsity=0.99", "--epochs=5",
                         "--download=True", f"--out_dir={out_dir}",
                         f"--run_name={sweeps.run_name(sweeps.expand(spec)[0])}", "--wandb=offline", "--quiet",
                         "--data_dir=/data"]
    assert not (tmp_path / "runs").exists()


def test_runner_owned_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sets --out_dir itself"):
        sweeps.run_local(_spec(out_dir={"value": "x"}), "s.yaml", runs_dir=tmp_path, dry_run=True)


def test_several_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr(sweeps.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert sweeps.child_env(4)["OMP_NUM_THREADS"] == sweeps.child_env(4)["MKL_NUM_THREADS"] == "2"
    assert sweeps.child_env(16)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in sweeps.child_env(1)


def test_distributed_runs_are_launched_by_torchrun_and_share_the_cores(tmp_path, monkeypatch):
    spec = _spec(**TINY, method={"value": "set"})
    [run] = sweeps.plan_runs(spec, tmp_path / "tiny", nproc_per_node=2)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert run.command[:7] == [*torchrun, str(ROOT / "cli.py"), "train"]
    (run.directory / "checkpoint.pt").parent.mkdir(parents=True)
    (run.directory / "checkpoint.pt").write_bytes(b"")
    [resumed] = sweeps.plan_runs(spec, tmp_path / "tiny", nproc_per_node=2)
    assert resumed.command == [*torchrun, str(ROOT / "cli.py"), "train", f"--resume={run.directory}"]
    monkeypatch.setattr(sweeps.os, "cpu_count", lambda: 8)
    assert sweeps.child_env(2, nproc_per_node=2)["OMP_NUM_THREADS"] == "2"
    assert sweeps.child_env(1, nproc_per_node=2)["OMP_NUM_THREADS"] == "4"


def test_a_local_sweep_of_two_rank_runs_finishes(tmp_path):
    spec = _spec(**TINY, method={"value": "set"}, batch_size={"value": 32})
    counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=tmp_path, wandb="off", printer=lambda line: None,
                              nproc_per_node=2)
    assert counts == {"total": 1, "skipped": 0, "finished": 1, "failed": 0}
    [run] = sweeps.plan_runs(spec, tmp_path / "tiny")
    assert json.loads((run.directory / "summary.json").read_text())["method"] == "set"
    assert "torch.distributed.run --standalone --nproc_per_node=2" in run.log.read_text().splitlines()[0]


def test_a_failed_run_keeps_its_own_error_line_not_the_launchers_banner(tmp_path):
    script = "import sys; print('error: --sparsity must be in [0, 1)', file=sys.stderr); print('=' * 40, file=sys.stderr)"
    run = sweeps.Run({}, "r", tmp_path / "r", tmp_path / "r.log", [sys.executable, "-c", script])
    assert sweeps.execute(run, dict(os.environ)) == (0, "error: --sparsity must be in [0, 1)")


def test_wandb_agents_launch_each_run_through_torchrun():
    command = sweeps.load_sweep(ROOT / "sweeps" / "mlp_99_cpu.yaml")["command"]
    assert sweeps.distributed_command(command, 1) == command
    assert sweeps.distributed_command(command, 4) == [
        "${env}", "${interpreter}", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
        "${program}", "train", "${args}"]
    assert sweeps.distributed_command(None, 2)[:6] == ["${env}", "${interpreter}", "-m", "torch.distributed.run",
                                                       "--standalone", "--nproc_per_node=2"]
    with pytest.raises(ValueError, match="start with"):
        sweeps.distributed_command(["${env}", "${program}", "train", "${args}"], 2)


# -------------------------------------------------------------------------------------------------------- W&B

def test_wandb_sweep_is_not_created_when_logged_out(monkeypatch, tmp_path):
    import wandb
    calls = []
    monkeypatch.setattr(wandb, "sweep", lambda *args, **kwargs: calls.append(args))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="not logged in to W&B"):
        sweeps.run_wandb(sweeps.load_sweep(ROOT / "sweeps" / "mlp_99_cpu.yaml"), agents=0)
    assert calls == []


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc to find child processes")
def test_sigterm_to_a_sweep_stops_its_runs_and_a_second_call_resumes_them(tmp_path):
    """A 500-epoch run cannot finish before the signal: the sweep must stop it, not wait for it."""
    import signal
    import subprocess
    import time

    import yaml
    spec = {**_spec(**{**TINY, "epochs": {"value": 500}}, method={"value": "set"}, seed={"values": [0]}),
            "command": COMMAND}
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(spec))
    runs_dir = tmp_path / "runs"
    sweep = subprocess.Popen([sys.executable, "cli.py", "sweep", str(tmp_path / "long.yaml"), "--local", "--wandb",
                              "off", "--runs_dir", str(runs_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list(runs_dir.glob("long/*/checkpoint.pt")) and sweep.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert sweep.poll() is None, sweep.communicate()[1]
    run_dir = next(runs_dir.glob("long/*/checkpoint.pt")).parent
    assert _processes_mentioning(str(runs_dir)), "no training process found"
    sweep.send_signal(signal.SIGTERM)
    try:
        _, stderr = sweep.communicate(timeout=60)
    finally:
        for pid in _processes_mentioning(str(runs_dir)):  # never leave a stray trainer behind, pass or fail
            os.kill(pid, signal.SIGKILL)
    assert sweep.returncode == 143 and "sweep interrupted (SIGTERM)" in stderr
    assert not (run_dir / "summary.json").exists()
    assert _processes_mentioning(str(runs_dir)) == []  # no training child left behind
    lines = []
    sweeps.run_local(sweeps.load_sweep(tmp_path / "long.yaml"), tmp_path / "long.yaml", runs_dir=runs_dir,
                     dry_run=True, wandb="off", printer=lines.append)
    assert [shlex.split(line)[2:] for line in lines] == [["train", f"--resume={run_dir}"]]


# ------------------------------------------------------------------------------------------ workers sharing a queue

def _hold_lock_in_another_process(run_dir: Path):
    """A process that takes the run's lock, says so on stdout, and holds it until its stdin closes."""
    import subprocess
    script = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
              "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")
    run_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", script, str(run_dir / sweeps.LOCK_FILE)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_run_held_by_another_worker_is_skipped_and_taken_over_when_that_worker_dies(tmp_path):
    spec = _spec(**TINY, method={"value": "set"}, seed={"values": [0, 1]})
    held, free = _run_dirs(spec, tmp_path)
    holder = _hold_lock_in_another_process(held)
    try:
        lines = []
        counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=tmp_path, wandb="off", printer=lines.append)
        assert counts == {"total": 2, "skipped": 1, "finished": 1, "failed": 0}
        assert f"skipped: {held.name} (held by another worker)" in lines
        assert (free / "summary.json").exists() and not (held / "config.json").exists()  # never started
    finally:
        holder.stdin.close()  # the holder exits: the kernel drops its lock, as for a worker that died
        holder.wait()
    counts = sweeps.run_local(spec, "tiny.yaml", runs_dir=tmp_path, wandb="off", printer=lambda line: None)
    assert counts == {"total": 2, "skipped": 1, "finished": 1, "failed": 0}
    assert (held / "summary.json").exists()


def test_two_workers_sharing_a_queue_launch_each_run_once(tmp_path, monkeypatch):
    """Two workers start on the same two-run queue at once; each launch waits at a barrier for a second launch,
    which only the other worker on the other run can make. Without the lock both would launch the first run."""
    import threading
    spec = _spec(**TINY, method={"value": "set"}, seed={"values": [0, 1]})
    barrier, launched = threading.Barrier(2, timeout=120), []

    def launch(run, command, env, lock):
        launched.append(run.name)
        barrier.wait()
        (run.directory / "summary.json").write_text("{}")
        return 0, ""

    monkeypatch.setattr(sweeps, "_launch", launch)
    results = [None, None]

    def worker(index):
        results[index] = sweeps.run_local(spec, "tiny.yaml", runs_dir=tmp_path, wandb="off", printer=lambda line: None)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(launched) == sorted(path.name for path in _run_dirs(spec, tmp_path))
    assert sorted((r["finished"], r["skipped"]) for r in results) == [(1, 1), (1, 1)]


def test_a_run_whose_worker_died_mid_run_is_resumed_not_restarted(tmp_path):
    """The plan said "new run"; a checkpoint written since (by a worker that died) turns it into a resume."""
    run_dir = tmp_path / "r"
    run = sweeps.Run({}, "r", run_dir, tmp_path / "r.log", [sys.executable, "cli.py", "train", "--seed=0"])
    assert sweeps.current_command(run) == run.command
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"")
    assert sweeps.current_command(run) == [sys.executable, "cli.py", "train", f"--resume={run_dir}"]


def test_the_pending_language_model_sweep_waits_only_for_its_three_missing_options():
    """sweeps/pending/results_lm_authors.yaml runs once --model lm has --zeta_decay, --rewarm_steps and a
    N(0, 0.02²) value initialiser; this fails as soon as one lands, so that the sweep moves to sweeps/."""
    spec = sweeps.load_sweep(ROOT / "sweeps" / "pending" / "results_lm_authors.yaml")
    sweeps.check_sweep(spec, OPTIONS)
    params = {k: DefaultParseValue(str(v)) for k, v in sweeps.expand(spec)[0].items()}
    model = params.pop("model")
    waiting = {"zeta_decay", "rewarm_steps", "weights"}
    check_option_names(CONFIGS, model, {k: v for k, v in params.items() if k not in waiting})
    for name in waiting - {"weights"}:
        with pytest.raises(ValueError, match=name):
            check_option_names(CONFIGS, model, {name: params[name]})
    assert params["weights"] not in WEIGHT_INITS  # no N(0, 0.02²) initialiser for sparse values yet
