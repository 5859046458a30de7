"""The prepared GPU check: one command that runs every GPU-side measurement of the project on a GPU machine
with PyTorch but no internet, and writes what it found to OUT_DIR as ``gpu_check.json`` (every number and
verdict), ``gpu_check.md`` (the tables) and ``gpu_check.log`` (every command's output).

Parts, each in its own process with its own time limit, a failure recorded without stopping the others:
  a  device_tests    pytest over the device-parametrised tests (the test files importing ``tests.devices``),
                     which run on the CPU and on CUDA when present
  b  memory          ``cli.py memory``'s measurement on the device for the paper MLP (MNIST sizes) and the
                     paper-size IWSLT14 Transformer (random tokens of its 10,000-piece vocabulary: no data or
                     tokenizer needed), dense vs 90% and 99%, the Transformer in fp32 and in bf16, CUDA peaks from
                     ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, with each step's time;
                     beside it the same models counted on the CPU in fp32 (one step): counted bytes must be equal,
                     fp32 allocated-peak ratios are compared
  c  bench           ``cli.py bench``'s table on the device at 90/99/99.9% (on CUDA with the 8192×8192, batch
                     4,096 shape), with the issue's targets at that shape read off it
  d  parity          CHTs on a digits MLP in float64, on the CPU and on the device from one seed and one
                     initial model: the topology hash after every update must be equal and every step's loss
                     within 1e-9 (the library directly: the CLI has no float64 option)
  e  translate_bf16  ``cli.py train --model transformer --dataset multi30k --preset cpu --method chts
                     --device DEVICE --precision bf16 --train_steps 200``: exit status, summary, seconds per step
  f  torchrun        ``torchrun --standalone --nproc_per_node 1 cli.py train`` (digits MLP) on the device; on
                     CUDA the process group must be NCCL's (``NCCL_DEBUG=INFO`` lines in its output)
Parts e and f need ``cli.py train --device/--precision``; a checkout without them records them as
``unsupported``. The whole check keeps to a budget (``--budget``, default 400 s: under 7 minutes on one H100);
a part that would outrun it is stopped and recorded as ``timeout``.

What travels: the device tool sends the checkout, not ``../shared``. ``--stage`` copies into the git-ignored
``.gpu_check/`` (about 1.5 MB) what the check needs that is not in the checkout or on the GPU image: Multi30k
(``.gpu_check/data/multi30k``, from ``../shared/data``) for part e, and the pure-Python packages that the GPU
image lacks and ``cli.py`` imports (fire and its termcolor, copied from this machine's environment into
``.gpu_check/site``; the check puts that folder on the child processes' path only where the package is missing
there, and never installs anything). W&B is not needed: the runs use ``--wandb off``.

    python -m benchmarks.gpu_check --stage                      # here, in the checkout the device tool sends
    python -m benchmarks.gpu_check OUT_DIR [--device cuda] [--parts a,b,...] [--budget SECONDS]
    python -m benchmarks.gpu_check OUT_DIR --device cpu --smoke # tiny sizes, for CI (tests/benchmarks)

The device tool's call (carry the staged folder; 450 s leaves time for a rerun of some parts with --parts):
    run(command="PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check $OUT --device cuda",
        carry=[".gpu_check"], timeout_s=450)
"""
import argparse
import copy
import datetime
import gzip
import importlib.util
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".gpu_check"
SHARED_DATA = ROOT.parent / "shared" / "data"
MULTI30K_FILES = ("train", "val", "test_2016_flickr")  # the splits the multi30k corpus reads, .en.gz and .de.gz
STAGED_PACKAGES = ("fire", "termcolor")  # pure Python, imported by cli.py, absent from the GPU image
PARTS = {"a": "device_tests", "b": "memory", "c": "bench", "d": "parity", "e": "translate_bf16", "f": "torchrun"}
LIMITS = {"device_tests": 90, "memory": 110, "bench": 50, "parity": 60, "translate_bf16": 100, "torchrun": 40}
SMOKE_LIMIT = 120  # seconds per part in the smoke form (a loaded CI machine)
LOSS_TOLERANCE = 1e-9
MEMORY_SPARSITIES = (0.9, 0.99)
BENCH_SPARSITIES = (0.9, 0.99, 0.999)


# ----------------------------------------------------------------------------------------------------------
# staging (on the development machine)

def stage(shared: Path = SHARED_DATA, target: Path = STAGE) -> list[Path]:
    """Copy Multi30k's splits from ``shared`` and the packages of ``STAGED_PACKAGES`` from this environment into
    ``target``; the paths written. ``SystemExit`` (one line) for a missing file or package."""
    written = []
    for split in MULTI30K_FILES:
        for language in ("en", "de"):
            source = shared / "multi30k" / f"{split}.{language}.gz"
            if not source.is_file():
                raise SystemExit(f"error: {source} not found; pass --shared DATA_DIR (the folder holding multi30k/)")
            destination = target / "data" / "multi30k" / source.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            written.append(destination)
    for name in STAGED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"error: package {name} is not installed here, so it cannot be staged "
                             f"(pip install {name})")
        source = Path(next(iter(spec.submodule_search_locations)))
        destination = target / "site" / name
        shutil.rmtree(destination, ignore_errors=True)
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        written.append(destination)
    return written


def child_environment(stage_dir: Path = STAGE) -> tuple[dict, list[str]]:
    """The environment of the check's child processes: the checkout first on ``PYTHONPATH``, then the staged
    packages' folder where one of ``STAGED_PACKAGES`` is not importable here; and the names taken from it."""
    missing = [name for name in STAGED_PACKAGES if importlib.util.find_spec(name) is None]
    staged = stage_dir / "site"
    paths = [str(ROOT)] + ([str(staged)] if missing and staged.is_dir() else [])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")]
                                                                       if p])}
    return environment, (missing if staged.is_dir() else [])


# ----------------------------------------------------------------------------------------------------------
# parts run in a child process (python -m benchmarks.gpu_check --part NAME): each returns its JSON record

MEMORY_RUNS = (("mlp", "mnist", "fp32"), ("transformer", "iwslt14", "fp32"), ("transformer", "iwslt14", "bf16"))
SMOKE_MEMORY_RUNS = (("mlp", "mnist", "fp32"), ("mlp", "mnist", "bf16"))  # both precisions, one fresh process each
MEMORY_KEYS = ("sparsity", "counted", "counted_ratio", "measured_peak", "total_peak_ratio", "step_allocated",
               "allocated_peak", "allocated_peak_ratio", "step_seconds", "source")


def memory_part(device: str, smoke: bool, scratch: Path) -> dict:
    """Part b: ``run_memory`` on ``device`` for each of ``MEMORY_RUNS`` (smoke: ``SMOKE_MEMORY_RUNS`` at tiny
    sizes and 90% only) and, as the reference, each model in fp32 on the CPU for one step. Checks: counted
    bytes equal the CPU's (bf16 keeps float32 master values), the sparse models below dense; target: fp32
    allocated-peak ratios within 5 points of the CPU's."""
    from sparsenet.experiments.training_memory import run_memory
    sizes = {"mlp": dict(hidden=(32, 32), batch=8)}
    sparsities = list(MEMORY_SPARSITIES[:1] if smoke else MEMORY_SPARSITIES)
    record = {"sparsities": sparsities, "models": {}, "checks": {}, "targets": {}}
    references = {}
    for model, dataset, precision in SMOKE_MEMORY_RUNS if smoke else MEMORY_RUNS:
        options = sizes[model] if smoke else {}

        def measured(where: str, steps: int, precision: str) -> tuple[str, dict]:
            stem = scratch / f"memory-{model}-{precision}-{where.replace(':', '')}"
            table = run_memory(model, dataset, sparsities, where, steps=steps, out=str(stem), precision=precision,
                               **options)
            return table.split("\n\nWritten:")[0], json.loads(Path(f"{stem}.json").read_text())
        table, result = measured(device, 2 if smoke else 10, precision)
        if model not in references:
            references[model] = result if device == "cpu" and precision == "fp32" else measured("cpu", 1, "fp32")[1]
        reference = {r["sparsity"]: r for r in references[model]["rows"]}
        rows = [{**{k: r[k] for k in MEMORY_KEYS}, "cpu_counted": reference[r["sparsity"]]["counted"],
                 "cpu_allocated_peak_ratio": reference[r["sparsity"]]["allocated_peak_ratio"]} for r in result["rows"]]
        name = model if precision == "fp32" else f"{model}_{precision}"
        record["models"][name] = {"dataset": dataset, "precision": precision, "sizes": result["sizes"],
                                  "batch": result["batch"], "steps": result["steps"], "table": table, "rows": rows}
        record["checks"][f"{name}_counted_equal_cpu"] = all(r["counted"] == r["cpu_counted"] for r in rows)
        record["checks"][f"{name}_sparse_below_dense"] = all(r["counted_ratio"] < 1 and r["allocated_peak_ratio"] < 1
                                                             for r in rows[1:])
        if precision == "fp32":
            record["targets"][f"{name}_allocated_ratio_within_5_points_of_cpu"] = all(
                abs(r["allocated_peak_ratio"] - r["cpu_allocated_peak_ratio"]) <= 0.05 for r in rows)
    return record


def bench_part(device: str, smoke: bool, scratch: Path) -> dict:
    """Part c: the layer bench on ``device`` at ``BENCH_SPARSITIES``; on CUDA the issue's targets at the
    8192×8192/4096 shape (reported, not failed on: speed depends on the card and the library)."""
    from sparsenet.experiments.layer_bench import GPU_SHAPE, bench, report
    from sparsenet.train.device import resolve_device
    target = resolve_device(device)
    shapes = [(64, 32, 8), (48, 40, 4)] if smoke else None
    repeats, warmup = (2, 1) if smoke else (10, 3)
    rows = bench(repeats, warmup, shapes, list(BENCH_SPARSITIES), target)
    record = {"repeats": repeats, "warmup": warmup, "table": report(rows, repeats, warmup, target), "rows": rows,
              "checks": {"every_cell_timed": all(r[k] > 0 for r in rows for k in ("dense_ms", "bf16_ms", "masked_ms",
                                                                                     "sparse_ms", "sparse_bf16_ms")),
                         "tf32_on_cuda_only": all((r["tf32_ms"] is None) == (target.type != "cuda") for r in rows),
                         "sparse_memory_below_dense": all(r["sparse_bytes"] < r["dense_bytes"] for r in rows)}}
    large = {r["sparsity"]: r for r in rows if (r["shape"], r["rows"]) == (f"{GPU_SHAPE[0]}x{GPU_SHAPE[1]}",
                                                                              GPU_SHAPE[2])}
    if large:
        record["targets"] = {
            "sparse_1.5x_dense_fp32_at_0.99": large[0.99]["dense_ms"] / large[0.99]["sparse_ms"] >= 1.5,
            "sparse_10x_dense_fp32_at_0.999": large[0.999]["dense_ms"] / large[0.999]["sparse_ms"] >= 10,
            "sparse_not_slower_than_mask_at_0.99_up": all(large[s]["sparse_ms"] <= large[s]["masked_ms"]
                                                          for s in (0.99, 0.999))}
    return record


def digits_run(model, data, device, epochs: int, batch: int, seed: int) -> tuple[list[float], list[str]]:
    """CHTs training of ``model`` (moved to ``device`` in float64) on digits: every step's loss and the topology
    hash before training and after every update. Batches are drawn on the CPU from ``seed``."""
    import torch
    from torch.nn import functional as F

    from sparsenet.evolution import TopologyEngine, make_method, method_schedule
    model = model.to(device=device, dtype=torch.float64)
    method = make_method("chts")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4)
    count = data.train_x.shape[0]
    steps_per_epoch = math.ceil(count / batch)
    engine = TopologyEngine(model, optimizer, method, method_schedule(method, steps_per_epoch, steps_per_epoch
                                                                        * epochs), seed=seed)
    x, y = data.train_x.to(device=device, dtype=torch.float64), data.train_y.to(device)
    order_generator = torch.Generator().manual_seed(seed)
    losses, hashes, step = [], [engine.topology_hash()], 0
    for _ in range(epochs):
        order = torch.randperm(count, generator=order_generator).to(device)
        for start in range(0, count, batch):
            rows = order[start:start + batch]
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            update = engine.step(step)
            losses.append(loss.detach())
            if update:
                hashes.append(update["topology_hash"])
    return torch.stack(losses).cpu().tolist(), hashes


def parity_part(device: str, smoke: bool, scratch: Path) -> dict:
    """Part d: the digits MLP at 90% sparsity (ER topology, SWI values, built once on the CPU in float32 from
    one seed) trained by ``digits_run`` on the CPU and on ``device``."""
    import torch

    from sparsenet.data import load_vision
    from sparsenet.models import MLP
    from sparsenet.topology import init_sparse_model
    data = load_vision("digits")
    hidden, epochs = ((32, 32), 2) if smoke else ((128, 128, 128), 4)  # an update at every epoch's end but the last
    generator = torch.Generator().manual_seed(0)
    model = MLP(data.features, hidden, data.classes, density=0.1, generator=generator)
    init_sparse_model(model, "er", 0.1, "swi", generator=generator)
    cpu_losses, cpu_hashes = digits_run(copy.deepcopy(model), data, "cpu", epochs, 32, seed=0)
    losses, hashes = digits_run(copy.deepcopy(model), data, device, epochs, 32, seed=0)
    differences = [abs(a - b) for a, b in zip(cpu_losses, losses)]
    first_differing = next((i for i, (a, b) in enumerate(zip(cpu_hashes, hashes)) if a != b), None)
    return {"devices": ["cpu", device], "hidden": list(hidden), "epochs": epochs, "steps": len(losses),
            "updates": len(hashes) - 1, "cpu_hashes": cpu_hashes, "device_hashes": hashes,
            "first_differing_update": first_differing, "max_abs_loss_difference": max(differences, default=math.inf),
            "final_loss": {"cpu": cpu_losses[-1], "device": losses[-1]},
            "checks": {"topology_changed": len(set(cpu_hashes)) == len(cpu_hashes) > 1,
                       "hashes_equal_at_every_update": cpu_hashes == hashes,
                       "loss_within_1e-9_at_every_step": len(losses) == len(cpu_losses) > 0
                       and max(differences) < LOSS_TOLERANCE}}


CHILD_PARTS = {"memory": memory_part, "bench": bench_part, "parity": parity_part}


# ----------------------------------------------------------------------------------------------------------
# parts run as commands (pytest, cli.py, torchrun)

def device_test_files() -> list[str]:
    """The library's test files that parametrise over ``tests.devices.DEVICES`` (not the command-line tests,
    which start ``cli.py`` processes), relative to the checkout."""
    return sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
                  if "tests.devices import" in path.read_text() and path.parent.name != "cli")


def device_tests_command(device: str, smoke: bool, scratch: Path) -> list[str]:
    """pytest over ``device_test_files`` (4 workers where pytest-xdist is installed); the smoke form runs the
    kernel tests' CPU cases only."""
    files = ["tests/sparse/test_kernels.py", "-k", "cpu"] if smoke else device_test_files()
    workers = ["-n", "4"] if not smoke and importlib.util.find_spec("xdist") else []
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *workers,
            f"--junitxml={scratch / 'device_tests.xml'}", *files]


def device_tests_record(output: str, scratch: Path) -> dict:
    """Counts and failed test ids from pytest's JUnit XML."""
    suites = ElementTree.parse(scratch / "device_tests.xml").getroot().iter("testsuite")
    counts = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    failed = []
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        failed += [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                   if case.find("failure") is not None or case.find("error") is not None]
    cuda_ids = sum(1 for line in output.splitlines() if "[cuda" in line)
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed_tests": failed, "files": device_test_files(), "cuda_ids_in_output": cuda_ids,
            "checks": {"all_passed": counts["failures"] == counts["errors"] == 0 and counts["tests"] > 0}}


def write_multi30k_sample(folder: Path, seed: int = 0) -> Path:
    """A tiny corpus in Multi30k's layout (train 200, val 20, test_2016_flickr 10 sentence pairs of made-up
    words) under ``folder/multi30k``: the smoke form's stand-in for the real one."""
    words = {"en": "a man dog runs on the red street with two women blue ball child".split(),
             "de": "ein mann hund rennt auf der roten strasse mit zwei frauen blauen ball kind".split()}
    draw = random.Random(seed)
    for split, count in (("train", 200), ("val", 20), ("test_2016_flickr", 10)):
        pairs = [[draw.randrange(len(words["en"])) for _ in range(draw.randint(3, 8))] for _ in range(count)]
        for language in ("en", "de"):
            path = folder / "multi30k" / f"{split}.{language}.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(path, "wt") as out:
                out.writelines(" ".join(words[language][i] for i in pair) + "\n" for pair in pairs)
    return folder


def train_options(environment: dict) -> str:
    """``cli.py train --help``: the options this checkout's recipes take (empty where it fails)."""
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--help"], cwd=ROOT, capture_output=True,
                            text=True, env=environment, timeout=120)
    return result.stdout if result.returncode == 0 else ""


def supports_device_and_precision(help_text: str) -> bool:
    """Whether ``train_options`` lists both ``--device`` and ``--precision``."""
    return all(re.search(rf"^\s*--{name}\b", help_text, re.MULTILINE) for name in ("device", "precision"))


def translate_command(device: str, smoke: bool, scratch: Path) -> list[str]:
    data = write_multi30k_sample(scratch / "sample") if smoke else STAGE / "data"
    sizes = (["--train_steps", "4", "--d_model", "16", "--heads", "2", "--layers", "1", "--d_ff", "32",
              "--vocab_size", "100", "--batch_tokens", "256", "--warmup_steps", "2", "--update_interval", "2",
              "--eval_every", "2", "--beam_size", "2"] if smoke else ["--train_steps", "200"])
    return [sys.executable, str(ROOT / "cli.py"), "train", "--model", "transformer", "--dataset", "multi30k",
            "--preset", "cpu", "--method", "chts", "--device", device, "--precision", "bf16", *sizes,
            "--data_dir", str(data), "--out_dir", str(scratch / "runs"), "--wandb", "off", "--quiet", "true"]


def torchrun_command(device: str, smoke: bool, scratch: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            str(ROOT / "cli.py"), "train", "--model", "mlp", "--dataset", "digits", "--epochs", "1" if smoke else "2",
            *(["--hidden", "16,16"] if smoke else []), "--device", device, "--out_dir", str(scratch / "runs"),
            "--wandb", "off", "--quiet", "true"]


def summary_of(output: str) -> dict | None:
    """The run's summary: the last stdout line that parses as a JSON object."""
    for line in reversed(output.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def translate_record(output: str, device: str) -> dict:
    """Part e's record: the summary's timing and quality fields, and whether it ran as asked."""
    summary = summary_of(output)
    keep = ("train_steps", "seconds_per_step", "train_seconds", "update_seconds", "update_overhead",
            "best_valid_loss", "sacrebleu", "bleu", "links", "nnz", "precision", "device")
    return {"summary": {k: summary[k] for k in keep if summary and k in summary},
            "checks": {"summary_written": summary is not None,
                       "ran_in_bf16_on_the_device": bool(summary) and summary.get("precision") == "bf16"
                       and str(summary.get("device", "")).startswith(device.split(":")[0]),
                       "finite_validation_loss": bool(summary) and math.isfinite(summary.get("best_valid_loss",
                                                                                             math.nan)),
                       "bleu_reported": bool(summary) and "sacrebleu" in summary}}


def torchrun_record(output: str, device: str) -> dict:
    """Part f's record: the summary, and on CUDA whether NCCL set up the process group."""
    summary = summary_of(output)
    nccl = "NCCL INFO" in output
    checks = {"summary_written": summary is not None}
    if device.startswith("cuda"):
        checks["nccl_used"] = nccl
    return {"nccl_info_lines": sum(1 for line in output.splitlines() if "NCCL INFO" in line),
            "summary": {k: summary[k] for k in ("final_test_accuracy", "train_seconds", "links") if summary and k in
                        summary}, "checks": checks}


# ----------------------------------------------------------------------------------------------------------
# the driver

class Check:
    """Runs the parts one after another within ``budget`` seconds, rewriting the JSON and Markdown after each."""

    def __init__(self, out: Path, device: str, smoke: bool, budget: float):
        self.out, self.device, self.smoke, self.budget = out, device, smoke, budget
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu_check-"))
        self.environment, staged = child_environment()
        self.environment["SPARSENET_DATA"] = str(self.scratch / "cache")  # BPE models: not in a user's cache
        if smoke:
            self.environment.setdefault("OMP_NUM_THREADS", "1")
        if device.startswith("cuda"):  # NCCL says when it sets up a communicator: part f's evidence
            self.environment.update(NCCL_DEBUG="INFO", NCCL_DEBUG_SUBSYS="INIT")
        self._train_help = None
        self.result = {"device": device, "smoke": smoke, "budget_seconds": budget,
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "environment": self._environment(staged), "parts": {}}
        out.mkdir(parents=True, exist_ok=True)
        self.log_path = out / "gpu_check.log"
        self.log_path.write_text("")
        self.started = time.monotonic()  # the budget is the parts' (the facts above take seconds)

    def _environment(self, staged: list[str]) -> dict:
        facts = {"python": sys.version.split()[0], "staged_packages_used": staged,
                 "packages": {name: importlib.util.find_spec(name) is not None
                              for name in ("fire", "wandb", "tqdm", "sacrebleu", "sentencepiece", "sklearn",
                                           "matplotlib", "hypothesis", "pytest")}}
        try:
            import torch
            facts.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        except ImportError as error:
            facts["torch"] = f"not importable: {error}"
        try:
            facts["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            facts["nvidia_smi"] = None
        return facts

    def log(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(text if text.endswith("\n") else text + "\n")

    def _limit(self, name: str) -> float:
        left = self.budget - (time.monotonic() - self.started)
        return max(min(SMOKE_LIMIT if self.smoke else LIMITS[name], left), 0.0)

    def _execute(self, name: str, command: list[str]) -> tuple[dict, str]:
        """Run ``command`` within the part's time limit; its status record and its output."""
        limit = self._limit(name)
        self.log(f"\n===== {name}: {' '.join(command)} (limit {limit:.0f} s)")
        if limit < 1:
            return {"status": "timeout", "error": "no time left in the budget"}, ""
        started = time.monotonic()
        # its own process group, so that a timeout stops the workers it started too (memory's fresh processes,
        # torchrun's ranks), which would otherwise hold the output pipe open
        process = subprocess.Popen(command, cwd=ROOT, env=self.environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        try:
            output, _ = process.communicate(timeout=limit)
            status = {"returncode": process.returncode}
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            status = {"status": "timeout", "error": f"stopped after {limit:.0f} s"}
        status["seconds"] = round(time.monotonic() - started, 2)
        self.log(output)
        return status, output

    def run_part(self, name: str) -> dict:
        letter = next(key for key, value in PARTS.items() if value == name)
        record = {"part": letter}
        if self._train_help is None and name in ("translate_bf16", "torchrun"):
            self._train_help = train_options(self.environment)
        if name in ("translate_bf16", "torchrun") and not supports_device_and_precision(self._train_help):
            record.update(status="unsupported", error="not supported by this checkout: cli.py train has no "
                                                      "--device/--precision options")
            self.log(f"\n===== {name}: {record['error']}")
            return record
        staged = (STAGE / "data" / "multi30k" / "train.en.gz").is_file()
        if name == "translate_bf16" and not self.smoke and not staged:
            record.update(status="error", error=f"Multi30k is not staged in {STAGE}: run python -m "
                                                "benchmarks.gpu_check --stage in the checkout and carry .gpu_check")
            self.log(f"\n===== {name}: {record['error']}")
            return record
        if name in CHILD_PARTS:
            result_file = self.scratch / f"{name}.json"
            command = [sys.executable, "-m", "benchmarks.gpu_check", "--part", name, "--device", self.device,
                       "--scratch", str(self.scratch), "--result", str(result_file)] + (["--smoke"] if self.smoke
                                                                                       else [])
        else:
            result_file = None
            command = {"device_tests": device_tests_command, "translate_bf16": translate_command,
                       "torchrun": torchrun_command}[name](self.device, self.smoke, self.scratch)
        record["command"] = " ".join(command)
        status, output = self._execute(name, command)
        record.update(status)
        if "status" in record:  # timed out
            return record
        try:
            if result_file is not None:
                record.update(json.loads(result_file.read_text()))
            elif name == "device_tests":
                record.update(device_tests_record(output, self.scratch))
            elif name == "translate_bf16":
                record.update(translate_record(output, self.device))
            else:
                record.update(torchrun_record(output, self.device))
        except (OSError, ValueError, ElementTree.ParseError) as error:
            record.update(status="error", error=f"{type(error).__name__}: {error}; last output: {output[-2000:]}")
            return record
        if record["returncode"] != 0:
            record.update(status="error", error=output[-2000:])
        else:
            record["status"] = "passed" if all(record.get("checks", {}).values()) else "failed"
        return record

    def run(self, names: list[str]) -> dict:
        for name in names:
            try:
                self.result["parts"][name] = self.run_part(name)
            except Exception as error:  # a broken part is recorded; the others still run
                self.result["parts"][name] = {"part": name, "status": "error",
                                              "error": f"{type(error).__name__}: {error}"}
            self.write()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.result

    def write(self) -> None:
        self.result["seconds"] = round(time.monotonic() - self.started, 2)
        self.result["summary"] = {name: part["status"] for name, part in self.result["parts"].items()}
        (self.out / "gpu_check.json").write_text(json.dumps(self.result, indent=2) + "\n")
        (self.out / "gpu_check.md").write_text(markdown(self.result))


def cuda_available() -> bool:
    """Whether torch imports here and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def markdown(result: dict) -> str:
    """The check's verdicts and tables as Markdown."""
    environment = result["environment"]
    lines = [f"# GPU check on {result['device']}{' (smoke)' if result['smoke'] else ''}", "",
             f"{result['started']}, {result.get('seconds', 0):.0f} s; torch {environment.get('torch')}, CUDA "
             f"{environment.get('cuda')}; {environment.get('nvidia_smi') or 'no nvidia-smi'}", "",
             "| part | status | seconds | checks |", "|---|---|---:|---|"]
    for name, part in result["parts"].items():
        checks = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in {**part.get("checks", {}),
                                                                        **part.get("targets", {})}.items())
        lines.append(f"| {part['part']} {name} | {part['status']} | {part.get('seconds', 0):.0f} | "
                     f"{checks or part.get('error', '')[:200].replace(chr(10), ' ')} |")
    for model, measured in result["parts"].get("memory", {}).get("models", {}).items():
        lines += ["", f"## memory: {model}", "", measured["table"]]
    if "table" in result["parts"].get("bench", {}):
        lines += ["", "## bench", "", result["parts"]["bench"]["table"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", help="folder for gpu_check.json, gpu_check.md and gpu_check.log")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the CI form")
    parser.add_argument("--parts", default=",".join(PARTS), help="letters of the parts to run, e.g. a,c")
    parser.add_argument("--budget", type=float, default=400.0, help="seconds for all parts together")
    parser.add_argument("--stage", action="store_true", help="copy what the check needs into .gpu_check/")
    parser.add_argument("--shared", type=Path, default=SHARED_DATA, help="data folder holding multi30k/ (--stage)")
    parser.add_argument("--part", choices=sorted(CHILD_PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        written = stage(args.shared)
        print(f"staged {len(written)} paths into {STAGE}")
        return 0
    if args.part:
        args.result.write_text(json.dumps(CHILD_PARTS[args.part](args.device, args.smoke, args.scratch)))
        return 0
    letters = [letter.strip() for letter in args.parts.split(",") if letter.strip()]
    unknown = [letter for letter in letters if letter not in PARTS]
    if args.out_dir is None or unknown or not letters:
        parser.error(f"unknown parts {unknown}; choose from {','.join(PARTS)}" if unknown else
                     "give OUT_DIR (or --stage)" if args.out_dir is None else "no part given")
    if args.device != "cpu" and args.device != "cuda" and not args.device.startswith("cuda:"):
        parser.error(f"unknown device {args.device!r}; choose cuda, cuda:N or cpu")
    if args.device != "cpu" and not cuda_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device (or this torch build has no CUDA); "
                     f"the smoke form runs with --device cpu")
    result = Check(Path(args.out_dir), args.device, args.smoke, args.budget).run([PARTS[l] for l in letters])
    print(markdown(result))
    return 0 if all(part["status"] in ("passed", "unsupported") for part in result["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
