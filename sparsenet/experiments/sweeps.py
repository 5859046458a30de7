"""Sweeps: W&B sweep YAMLs (``sweeps/*.yaml``) loaded, checked, expanded into runs, run here or on W&B.

A sweep file is exactly W&B's format (https://docs.wandb.ai/models/sweeps/sweep-config-keys)::

    program: cli.py
    command: [${env}, ${interpreter}, ${program}, train, ${args}]
    method: grid                      # grid | random | bayes
    metric: {name: best_test_accuracy, goal: maximize}
    parameters:                       # names are `python cli.py train` options
      dataset: {value: mnist}         # fixed
      seed: {values: [0, 1, 2]}       # one run per value (grid), or drawn uniformly (random)
      zeta: {distribution: uniform, min: 0.1, max: 0.5}   # random / bayes only

Local layout (``run_local``)::

    RUNS_DIR/SWEEP/RUN_NAME/          the train run directory (config.json, metrics.jsonl, summary.json, ...)
    RUNS_DIR/SWEEP/RUN_NAME/run.lock  held (``fcntl.flock``) by the worker training the run
    RUNS_DIR/SWEEP/logs/RUN_NAME.log  the run's stdout and stderr (appended to on every attempt)
    RUNS_DIR/SWEEP/failed.jsonl       one JSON line per failed attempt

SWEEP is the spec's ``name`` (else the YAML's stem); RUN_NAME is ``run_name(params)``, so running the same
sweep again finds its directories: finished runs (summary.json) are skipped, interrupted ones (checkpoint.pt,
no summary) continue with ``train --resume``. Several workers (``cli.py sweep --local`` started more than once,
on one machine or on machines sharing the folder) can share a sweep: each takes a run's lock before launching
it and skips a run whose lock another worker holds; the kernel releases a lock when its holders (the worker and
its training process) are gone, so a dead worker's run is taken over and resumed from its checkpoint.

Distributed runs (``nproc_per_node`` > 1): each run of the sweep is launched through torchrun
(``python -m torch.distributed.run --standalone --nproc_per_node N cli.py train ...``), locally and by the
W&B agents (the sweep's ``command`` gets the torchrun prefix, W&B's pattern for distributed runs); rank 0
alone talks to W&B.
"""
import difflib
import fcntl
import hashlib
import itertools
import json
import math
import os
import random
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from tqdm import tqdm

from ..train.tracking import wandb_mode

REPO_ROOT = Path(__file__).resolve().parents[2]  # holds cli.py, the sweeps' program
TOP_LEVEL_KEYS = ("program", "command", "method", "metric", "parameters", "name", "description", "project", "entity",
                  "early_terminate", "run_cap")
REQUIRED_KEYS = ("program", "method", "parameters")
SEARCH_METHODS = ("grid", "random", "bayes")
RUNNER_OPTIONS = ("out_dir", "run_name", "wandb", "quiet", "resume", "restart")  # set per run by run_local
DISTRIBUTIONS = {  # W&B's distributions: (required keys, optional keys with their defaults)
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}


def _quantized(x: float, q: float):
    """W&B's quantisation: ``round(x / q) * q``, an int when ``q`` is an int."""
    value = round(x / q) * q
    return int(value) if isinstance(q, int) else value


SAMPLERS = {  # the distributions expand() draws from locally: (filled parameter spec, rng) -> value
    "constant": lambda p, rng: p["value"],
    "categorical": lambda p, rng: rng.choice(p["values"]),
    "categorical_w_probabilities": lambda p, rng: rng.choices(p["values"], weights=p["probabilities"])[0],
    "int_uniform": lambda p, rng: rng.randint(p["min"], p["max"]),
    "uniform": lambda p, rng: rng.uniform(p["min"], p["max"]),
    "q_uniform": lambda p, rng: _quantized(rng.uniform(p["min"], p["max"]), p["q"]),
    "log_uniform": lambda p, rng: math.exp(rng.uniform(p["min"], p["max"])),  # min, max: natural logs
    "log_uniform_values": lambda p, rng: math.exp(rng.uniform(math.log(p["min"]), math.log(p["max"]))),
    "q_log_uniform_values": lambda p, rng: _quantized(
        math.exp(rng.uniform(math.log(p["min"]), math.log(p["max"]))), p["q"]),
    "normal": lambda p, rng: rng.gauss(p["mu"], p["sigma"]),
    "q_normal": lambda p, rng: _quantized(rng.gauss(p["mu"], p["sigma"]), p["q"]),
    "log_normal": lambda p, rng: rng.lognormvariate(p["mu"], p["sigma"]),
}


# ---------------------------------------------------------------------------------------------- load and check

def load_sweep(path) -> dict:
    """The sweep spec in the YAML file ``path``; ``ValueError`` if it is missing, not YAML, or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no sweep file {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a sweep file is a YAML mapping (program, method, parameters, ...)")
    return spec


def train_options() -> dict:
    """``{name: field type}`` of every ``train`` option (the recipes' config fields; ``resume`` and
    ``restart``, the CLI's own, map to ``None``)."""
    from ..train import CONFIGS
    from ..train.config import option_fields
    options = {"resume": None, "restart": None}
    for config_class in CONFIGS.values():
        options.update({name: field.type for name, field in option_fields(config_class).items()})
    return options


def _check_parameter_values(name: str, parameter: dict, kind) -> None:
    """The fixed values of a parameter (``value``, ``values``) as the run receives them: printed as
    ``--name=value``, parsed by Fire, converted to the option's type; ``ValueError`` naming it otherwise."""
    from fire.parser import DefaultParseValue

    from ..train.config import convert
    if kind is None:
        return
    values = [parameter["value"]] if "value" in parameter else parameter.get("values", [])
    for value in values:
        try:
            convert(name, kind, DefaultParseValue(str(value)))
        except ValueError as error:
            raise ValueError(f"parameter {name!r}: {error}") from None


def _closest(name: str, choices) -> str:
    """`` (did you mean 'X'?)`` for the choice closest to ``name``, or ``''``."""
    match = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_sweep(spec: dict, train_options: dict) -> None:
    """Raise a one-line ``ValueError`` unless ``spec`` is a W&B sweep of ``train`` runs.

    Checks: only W&B's top-level keys; program, method and parameters present; method grid/random/bayes
    (bayes needs a metric); every parameter a train option with exactly one of value, values or a
    distribution (grid: value/values only); ``command``, if given, a list with ``train`` and ``${args}``.
    """
    unknown = [key for key in spec if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise ValueError(f"unknown sweep key {unknown[0]!r}{_closest(str(unknown[0]), TOP_LEVEL_KEYS)}; "
                         f"W&B's keys are {list(TOP_LEVEL_KEYS)}")
    missing = [key for key in REQUIRED_KEYS if key not in spec]
    if missing:
        raise ValueError(f"the sweep has no {missing[0]!r} (required: {list(REQUIRED_KEYS)})")
    if not isinstance(spec["program"], str):
        raise ValueError(f"'program' must be the script to run (cli.py), got {spec['program']!r}")
    if spec["method"] not in SEARCH_METHODS:
        raise ValueError(f"unknown sweep method {spec['method']!r}; choose from {list(SEARCH_METHODS)}")
    _check_metric(spec)
    _check_command(spec.get("command"))
    parameters = spec["parameters"]
    if not isinstance(parameters, dict) or not parameters:
        raise ValueError("'parameters' must map train options to {value: ...}, {values: [...]} or a distribution")
    for name, parameter in parameters.items():
        if name not in train_options:
            raise ValueError(f"unknown parameter {name!r}: not a train option{_closest(str(name), train_options)}")
        distribution = parameter_distribution(name, parameter)
        _check_parameter_values(name, parameter, train_options[name])
        if spec["method"] == "grid" and distribution not in ("constant", "categorical"):
            raise ValueError(f"parameter {name!r}: a grid sweep takes value or values, not a {distribution} "
                             f"distribution (use method: random)")


def _check_metric(spec: dict) -> None:
    metric = spec.get("metric")
    if metric is None:
        if spec["method"] == "bayes":
            raise ValueError("a bayes sweep needs a metric: {name: ..., goal: minimize|maximize}")
        return
    if not isinstance(metric, dict) or "name" not in metric:
        raise ValueError("'metric' must be {name: ..., goal: minimize|maximize}")
    if metric.get("goal", "minimize") not in ("minimize", "maximize"):
        raise ValueError(f"metric goal must be minimize or maximize, got {metric['goal']!r}")


def _check_command(command) -> None:
    if command is None:
        return
    if not isinstance(command, list) or "${args}" not in command or "train" not in command:
        raise ValueError(f"'command' must be a list with train and ${{args}}, e.g. "
                         f"[${{env}}, ${{interpreter}}, ${{program}}, train, ${{args}}]; got {command!r}")


def parameter_distribution(name: str, parameter) -> str:
    """The W&B distribution of ``parameter`` (given, or inferred as W&B does: value -> constant, values ->
    categorical, int min/max -> int_uniform, else uniform); ``ValueError`` if its keys do not fit it."""
    if not isinstance(parameter, dict) or not {"value", "values", "distribution", "min", "max"} & set(parameter):
        raise ValueError(f"parameter {name!r} needs exactly one of value, values or distribution, got {parameter!r}")
    distribution = parameter.get("distribution") or _inferred_distribution(parameter)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"parameter {name!r}: unknown distribution {distribution!r}"
                         f"{_closest(str(distribution), DISTRIBUTIONS)}")
    required, optional = DISTRIBUTIONS[distribution]
    extra = sorted(set(parameter) - set(required) - set(optional) - {"distribution"})
    absent = [key for key in required if key not in parameter]
    if extra or absent:
        raise ValueError(f"parameter {name!r} needs exactly one of value, values or distribution: a {distribution} "
                         f"parameter takes {list(required) + list(optional)}, "
                         f"{'not ' + repr(extra) if extra else 'and misses ' + repr(absent)}")
    _check_values(name, distribution, parameter)
    return distribution


def _inferred_distribution(parameter: dict) -> str:
    if "value" in parameter:
        return "constant"
    if "values" in parameter:
        return "categorical_w_probabilities" if "probabilities" in parameter else "categorical"
    ints = all(isinstance(parameter.get(k), int) and not isinstance(parameter.get(k), bool) for k in ("min", "max"))
    return "int_uniform" if ints else "uniform"


def _check_values(name: str, distribution: str, parameter: dict) -> None:
    """The values a distribution's keys must have: a non-empty list, probabilities summing to 1, min < max."""
    values = parameter.get("values")
    if "values" in parameter and (not isinstance(values, list) or not values):
        raise ValueError(f"parameter {name!r}: values must be a non-empty list, got {values!r}")
    if "probabilities" in parameter:
        probabilities = parameter["probabilities"]
        if (not isinstance(probabilities, list) or len(probabilities) != len(values)
                or any(not isinstance(p, (int, float)) or p < 0 for p in probabilities)
                or not math.isclose(sum(probabilities), 1.0, abs_tol=1e-6)):
            raise ValueError(f"parameter {name!r}: probabilities must be {len(values)} numbers >= 0 summing to 1")
    if "min" in parameter:
        low, high = parameter["min"], parameter["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            raise ValueError(f"parameter {name!r}: min and max must be numbers with min < max, got {low!r}, {high!r}")
        if distribution == "int_uniform" and not all(isinstance(v, int) for v in (low, high)):
            raise ValueError(f"parameter {name!r}: int_uniform needs integer min and max")
        if distribution.endswith("_values") and low <= 0:
            raise ValueError(f"parameter {name!r}: {distribution} needs min > 0, got {low!r}")


# ------------------------------------------------------------------------------------------------------- expand

def expand(spec: dict, count: int | None = None, seed: int = 0) -> list[dict]:
    """The runs' parameters, ``[{option: value}]``, each dict in the spec's parameter order.

    grid: the cartesian product of every ``values`` list (``value``s fixed), the first parameter varying
    slowest; the first ``count`` (or ``run_cap``) of them if given. random and bayes (random locally):
    ``count`` (else ``run_cap``) draws seeded by ``seed``; ``values`` uniformly (or by ``probabilities``),
    distributions as W&B defines them (the ones in ``SAMPLERS``).
    """
    limit = count if count is not None else spec.get("run_cap")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"count must be a positive integer, got {limit!r}")
    parameters = spec["parameters"]
    if spec["method"] == "grid":
        return _grid(parameters)[:limit]
    if limit is None:
        raise ValueError(f"a {spec['method']} sweep needs a count (how many runs to draw), or run_cap in the YAML")
    rng = random.Random(seed)
    filled = {name: _filled(name, parameter) for name, parameter in parameters.items()}
    return [{name: SAMPLERS[distribution](parameter, rng) for name, (distribution, parameter) in filled.items()}
            for _ in range(limit)]


def _grid(parameters: dict) -> list[dict]:
    axes = [[parameter["value"]] if "value" in parameter else parameter["values"] for parameter in parameters.values()]
    return [dict(zip(parameters, combination)) for combination in itertools.product(*axes)]


def _filled(name: str, parameter: dict) -> tuple[str, dict]:
    """(distribution, the parameter with W&B's defaults filled in); ``ValueError`` if not sampled locally."""
    distribution = parameter_distribution(name, parameter)
    if distribution not in SAMPLERS:
        raise ValueError(f"parameter {name!r}: the {distribution} distribution is not drawn locally (supported: "
                         f"{', '.join(SAMPLERS)}); run this sweep on W&B")
    return distribution, {**DISTRIBUTIONS[distribution][1], **parameter}


# ---------------------------------------------------------------------------------------------------- run names

def run_name(params: dict) -> str:
    """``PIECE-PIECE-...-HASH``: a readable name for the run with ``params``, the same on every expansion.

    Pieces, in sorted key order, while they fit in 64 characters: strings as they are, numbers with their key
    (``seed0``, ``sparsity0.99``), flags as ``key`` / ``no_key``, a path (``/`` in it) or a piece longer than
    24 characters as its key. HASH: the first 8 hex digits of the SHA-1 of the params as sorted JSON, so the
    names differ whenever the params do.
    """
    readable = ""
    for piece in (_piece(key, params[key]) for key in sorted(params)):
        if piece and len(readable) + len(piece) < 64:
            readable += piece + "-"
    return readable + hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _piece(key: str, value) -> str:
    if isinstance(value, bool):
        text = key if value else f"no_{key}"
    elif isinstance(value, int):
        text = f"{key}{value}"
    elif isinstance(value, float):
        text = f"{key}{value:g}"
    else:
        text = re.sub(r"[^A-Za-z0-9._,+=]+", "_", str(value)).strip("_")
    return key if len(text) > 24 or "/" in str(value) else text


def sweep_name(spec: dict, sweep_path) -> str:
    """The sweep's directory name: the spec's ``name`` (made file-safe), else the YAML file's stem."""
    name = str(spec.get("name") or Path(sweep_path).stem)
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", name).strip("_") or Path(sweep_path).stem


# ---------------------------------------------------------------------------------------------------- local runs

@dataclass(frozen=True)
class Run:
    """One planned run: its parameters, directory, log file and the command that trains or resumes it."""
    params: dict
    name: str
    directory: Path
    log: Path
    command: list

    @property
    def finished(self) -> bool:
        return (self.directory / "summary.json").exists()


def program_path(spec: dict) -> Path:
    """The sweep's ``program`` resolved against the repository root (the folder of cli.py)."""
    program = Path(spec["program"])
    path = program if program.is_absolute() else REPO_ROOT / program
    if not path.is_file():
        raise ValueError(f"the sweep's program {spec['program']!r} is not a file in {REPO_ROOT}")
    return path


def launcher(nproc_per_node: int = 1) -> list[str]:
    """The start of a run's command: ``python``, or ``python -m torch.distributed.run --standalone
    --nproc_per_node=N`` (torchrun on one machine, a free rendezvous port per run) for N > 1 processes."""
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise ValueError(f"--nproc_per_node must be an integer >= 1, got {nproc_per_node!r}")
    if nproc_per_node == 1:
        return [sys.executable]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}"]


def plan_runs(spec: dict, sweep_dir: Path, count: int | None = None, seed: int = 0, extra_args=(),
              wandb: str = "offline", nproc_per_node: int = 1) -> list[Run]:
    """A ``Run`` per expanded parameter set. Command: ``LAUNCHER PROGRAM train --k=v ... --out_dir=SWEEP_DIR
    --run_name=NAME --wandb=WANDB --quiet EXTRA_ARGS``, or ``LAUNCHER PROGRAM train --resume=RUN_DIR`` when
    the run has a checkpoint but no summary (a resumed run keeps its own config); LAUNCHER is
    ``launcher(nproc_per_node)``."""
    owned = [name for name in spec["parameters"] if name in RUNNER_OPTIONS]
    if owned:
        raise ValueError(f"the local runner sets {', '.join('--' + n for n in owned)} itself; remove "
                         f"{'it' if len(owned) == 1 else 'them'} from the sweep's parameters")
    program = str(program_path(spec))
    start = launcher(nproc_per_node)
    runs = []
    for params in expand(spec, count, seed):
        name = run_name(params)
        directory = sweep_dir / name
        if (directory / "checkpoint.pt").exists() and not (directory / "summary.json").exists():
            command = [*start, program, "train", f"--resume={directory}"]
        else:
            command = [*start, program, "train", *(f"--{k}={v}" for k, v in params.items()),
                       f"--out_dir={sweep_dir}", f"--run_name={name}", f"--wandb={wandb}", "--quiet", *extra_args]
        runs.append(Run(params, name, directory, sweep_dir / "logs" / f"{name}.log", command))
    return runs


def child_env(workers: int, nproc_per_node: int = 1) -> dict:
    """The environment for the runs: with several processes at a time (workers x processes per run),
    ``cpu_count // processes`` (>= 1) OpenMP/MKL threads each so that they do not oversubscribe the cores."""
    env = dict(os.environ)
    if workers * nproc_per_node > 1:
        threads = str(max(1, (os.cpu_count() or 1) // (workers * nproc_per_node)))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return env


_RUNNING: set = set()  # the training processes this sweep has started and not yet seen end


LOCK_FILE = "run.lock"  # in the run's directory


@contextmanager
def claimed(run: Run):
    """Hold the run's lock (an exclusive ``fcntl.flock`` on RUN_DIR/run.lock) inside the block: yields the lock
    file's descriptor, or ``None`` when another process holds it (that run is another worker's). The kernel
    releases the lock when every process holding the descriptor has ended, so a dead worker leaves none."""
    run.directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(run.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def current_command(run: Run) -> list:
    """``run.command``, or the resume command if a checkpoint appeared since it was planned (a worker that held
    the run died mid-run)."""
    resumable = (run.directory / "checkpoint.pt").exists() and not (run.directory / "summary.json").exists()
    if not resumable or any(part.startswith("--resume=") for part in run.command):
        return run.command
    return [*run.command[:run.command.index("train") + 1], f"--resume={run.directory}"]


def execute(run: Run, env: dict) -> tuple[int | None, str]:
    """Run the run's command under its lock, appending its stdout and stderr to ``run.log``: (exit code, last
    stderr line), or ``(None, reason)`` without running it when another worker holds it or has finished it."""
    with claimed(run) as lock:
        if lock is None:
            return None, "held by another worker"
        if run.finished:
            return None, "finished by another worker"
        return _launch(run, current_command(run), env, lock)


def _launch(run: Run, command: list, env: dict, lock: int) -> tuple[int, str]:
    """Run ``command`` (its process holds the run's lock too), logging to ``run.log``; (exit code, last error line)."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    last_line = ""
    with open(run.log, "ab") as log:
        log.write(f"$ {shlex.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE, env=env,
                                   pass_fds=(lock,))
        _RUNNING.add(process)
        try:
            for line in process.stderr:
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").strip()
                if text and (text.startswith("error") or not last_line.startswith("error")):
                    last_line = text  # a run's own error line, not a launcher's banner after it (torchrun)
            return process.wait(), last_line
        finally:
            _RUNNING.discard(process)


def stop_running(timeout: float = 120.0) -> None:
    """Pass SIGTERM to every training process still running and wait for it: each stops at once with its last
    checkpoint intact, so running the sweep again resumes it."""
    running = list(_RUNNING)
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def record_failure(sweep_dir: Path, run: Run, returncode: int, error: str) -> None:
    """Append ``{run_name, params, returncode, log, error, time}`` to ``SWEEP_DIR/failed.jsonl``."""
    record = dict(run_name=run.name, params=run.params, returncode=returncode, log=str(run.log), error=error,
                  time=time.strftime("%Y-%m-%d %H:%M:%S"))
    with open(sweep_dir / "failed.jsonl", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


def run_local(spec: dict, sweep_path, runs_dir="runs", workers: int = 1, count: int | None = None, seed: int = 0,
              dry_run: bool = False, extra_args=(), wandb: str = "offline", printer=print,
              nproc_per_node: int = 1) -> dict:
    """Run the sweep here, ``workers`` runs at a time, into ``RUNS_DIR/SWEEP/`` (see the module docstring).

    Finished runs are skipped, interrupted ones resumed, runs another worker holds skipped (and counted so);
    a failing run is recorded in failed.jsonl and the sweep goes on. ``dry_run`` prints each pending run's
    command and runs (and creates) nothing. ``extra_args`` (e.g. ``["--data_dir=../data"]``) go to every new
    run; each run is ``nproc_per_node`` torchrun processes when that is > 1. Returns the counts
    ``{"total", "skipped", "finished", "failed"}``.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    sweep_dir = Path(runs_dir) / sweep_name(spec, sweep_path)
    runs = plan_runs(spec, sweep_dir, count, seed, tuple(extra_args), wandb, nproc_per_node)
    pending = [run for run in runs if not run.finished]
    counts = {"total": len(runs), "skipped": len(runs) - len(pending), "finished": 0, "failed": 0}
    if spec["method"] == "bayes":
        printer("note: a bayes sweep runs as a random search locally")
    if dry_run:
        for run in pending:
            printer(shlex.join(run.command))
        return counts
    env = child_env(workers, nproc_per_node)
    for run, returncode, error in _execute_all(pending, workers, sweep_dir.name, env):
        if returncode is None:
            counts["skipped"] += 1
            printer(f"skipped: {run.name} ({error})")
        elif returncode == 0:
            counts["finished"] += 1
        else:
            counts["failed"] += 1
            record_failure(sweep_dir, run, returncode, error)
            printer(f"failed: {run.name} (exit {returncode}): {error} — log: {run.log}")
    printer(f"sweep {sweep_dir.name}: {counts['total']} runs, {counts['skipped']} already done, "
            f"{counts['finished']} finished, {counts['failed']} failed; in {sweep_dir}")
    return counts


def _execute_all(runs: list[Run], workers: int, label: str, env: dict):
    """Yield ``(run, exit code, last stderr line)`` as the runs end, ``workers`` at a time (environment ``env``),
    with a progress bar; on an interrupt, runs not yet started are cancelled."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(execute, run, env): run for run in runs}
        with tqdm(total=len(runs), desc=label, unit="run", disable=not runs) as bar:
            for future in as_completed(futures):
                bar.update()
                yield (futures[future], *future.result())
    except BaseException:  # Ctrl-C or SIGTERM of the sweep: its runs stop too (no orphan keeps training)
        stop_running()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------------- W&B

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "train", "${args}"]


def distributed_command(command: list | None, nproc_per_node: int) -> list:
    """The sweep's ``command`` (default ``DEFAULT_COMMAND``) with each run launched by torchrun on
    ``nproc_per_node`` processes: ``${interpreter}`` becomes ``${interpreter} -m torch.distributed.run
    --standalone --nproc_per_node=N`` (the W&B agent expands the macros; rank 0 reports to the agent's run)."""
    command = list(command or DEFAULT_COMMAND)
    if nproc_per_node == 1:
        return command
    if "${interpreter}" not in command:
        raise ValueError("--nproc_per_node needs the sweep's command to start with ${interpreter} (python)")
    at = command.index("${interpreter}") + 1
    return command[:at] + launcher(nproc_per_node)[1:] + command[at:]


def run_wandb(spec: dict, project: str | None = None, entity: str | None = None, agents: int = 1,
              count: int | None = None, printer=print, nproc_per_node: int = 1) -> str:
    """Create the sweep on W&B; run ``agents`` agents here (``wandb agent``, each for up to ``count`` runs,
    from the repository root so that ``program: cli.py`` resolves), or with ``agents=0`` print the agent
    command. With ``nproc_per_node`` > 1 every run is launched through torchrun (``distributed_command``).
    Returns the sweep path ``ENTITY/PROJECT/SWEEP_ID``. ``ValueError`` unless logged in to W&B."""
    spec = {**spec, "command": distributed_command(spec.get("command"), nproc_per_node)}
    if wandb_mode("auto") != "online":
        raise ValueError("not logged in to W&B (run `wandb login`, or WANDB_MODE is set); run the sweep with --local")
    import wandb as wandb_lib
    project = project or spec.get("project") or "sparsenet"
    sweep_id = wandb_lib.sweep(spec, entity=entity or spec.get("entity"), project=project)
    entity = entity or spec.get("entity") or wandb_lib.Api().default_entity
    path = f"{entity}/{project}/{sweep_id}"
    agent_args = ["agent", *(["--count", str(count)] if count else []), path]
    if agents == 0:
        printer(f"start agents from {REPO_ROOT} with: {shlex.join(['wandb', *agent_args])}")
        return path
    processes = [subprocess.Popen([sys.executable, "-m", "wandb", *agent_args], cwd=REPO_ROOT) for _ in range(agents)]
    for process in processes:
        process.wait()
    return path
