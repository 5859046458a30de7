"""`python cli.py sweep`: the acceptance dry run, one-line errors, and sweep-agent run names."""
from pathlib import Path

from sparsenet.train.classify import build_config
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_lists_every_run_of_the_cpu_mlp_table(tmp_path):
    result = run_cli("sweep", "sweeps/mlp_99_cpu.yaml", "--local", "--dry_run", "--runs_dir", str(tmp_path),
                  "--data_dir", "../shared/data")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.strip().splitlines()
    assert len(commands) == 6 * 2  # methods x seeds
    assert all(" train " in c and "--data_dir=../shared/data" in c and f"--out_dir={tmp_path}/mlp_99_cpu" in c
               for c in commands)
    assert {c.split("--method=")[1].split()[0] for c in commands} == {"fc", "set", "rigl", "mest", "cht", "chts"}
    assert not any(tmp_path.iterdir())


def test_the_device_goes_to_every_run_and_is_checked_first(tmp_path):
    result = run_cli("sweep", "sweeps/mlp_99_cpu.yaml", "--local", "--dry_run", "--runs_dir", str(tmp_path),
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert all(c.endswith("--device=cpu") for c in result.stdout.strip().splitlines())
    result = run_cli("sweep", "sweeps/mlp_99_cpu.yaml", "--local", "--dry_run", "--device", "tpu")
    assert result.returncode != 0 and result.stderr.strip() == ("error: unknown device 'tpu'; choose from auto, "
                                                                "cpu, cuda or cuda:N")


def test_a_typo_in_a_sweep_is_one_line(tmp_path):
    sweep = tmp_path / "typo.yaml"
    sweep.write_text("program: cli.py\nmethod: grid\nparameters:\n  sparsty:\n    values: [0.9]\n")
    result = run_cli("sweep", str(sweep), "--local")
    assert result.returncode != 0
    assert result.stderr.strip() == "error: unknown parameter 'sparsty': not a train option (did you mean 'sparsity'?)"


def test_runs_launched_by_a_wandb_agent_get_their_own_directory(monkeypatch):
    assert build_config(method="set").name == "mlp-digits-set-s0.9-seed0"
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")
    monkeypatch.setenv("WANDB_RUN_ID", "run7")
    assert build_config(method="set").name == "mlp-digits-set-s0.9-seed0-run7"
    assert build_config(method="set", run_name="mine").name == "mine"


def test_table_without_finished_runs_is_one_line(tmp_path):
    result = run_cli("table", "sweeps/mlp_99_cpu.yaml", "--runs", str(tmp_path))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: no finished run of sweep 'mlp_99_cpu'")


def test_a_sweep_of_a_plugin_method_runs_it_in_every_run(tmp_path):
    """``--plugin`` reaches the runs a sweep starts (through $SPARSENET_PLUGINS): each run trains the plugin's
    method, which a run without the plugin would refuse."""
    sweep = tmp_path / "plugin.yaml"
    sweep.write_text("program: cli.py\nmethod: grid\nparameters:\n  method: {value: user_rules}\n"
                     "  epochs: {value: 1}\n  seed: {values: [0, 1]}\n")
    result = run_cli("sweep", str(sweep), "--local", "--runs_dir", str(tmp_path / "runs"), "--wandb", "off",
                     "--plugin", str(ROOT / "tests" / "evolution" / "user_rules.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = sorted((tmp_path / "runs" / "plugin").glob("*/summary.json"))
    assert len(summaries) == 2
    assert all(__import__("json").loads(path.read_text())["method"] == "user_rules" for path in summaries)
