"""The sparsenet command line: the ``sparsenet`` console command (``pip install -e .``), also run from a checkout
as ``python cli.py``. Run ``sparsenet COMMAND --help`` for a command's options."""
import json
import os
import sys
from pathlib import Path

import fire
import torch

from sparsenet.command_line import check_flags, error_exit, interrupted, load_plugins, stop_on_sigterm, typed
from sparsenet.runtime import tune_cpu

TRAIN_HELP = """Train a model; print progress, a readable result line, and the summary JSON last.

With no options: CHTs on scikit-learn's bundled 8x8 digits (offline, a few seconds), a 64-128-128-128-10 MLP
at 90% sparsity. The paper's MLP: --dataset mnist (99%, 100 epochs). The paper's Transformer: --model
transformer --dataset multi30k|iwslt14|wmt17 (90%); --preset cpu for a laptop-sized Multi30k run.
Ctrl-C or SIGTERM stops the run at once and exits 130 or 143; the last checkpoint (written after every epoch
or evaluation) is intact, and --resume continues from it exactly.

Usage: python cli.py train [--model mlp|transformer] [--OPTION VALUE ...]
  --resume DIR  continue the run in DIR from its last checkpoint; takes no other option (its config is used)
                but --device, to continue on another device.
  --restart     start again from scratch in a run directory that already holds a checkpoint (without it, such
                a command stops and says how to resume).
  --plugin MODULE  import MODULE (a module name or a .py file; any command, repeatable) before the options are
                checked, so the methods and rules it registers (sparsenet.evolution.register_*) are valid names.
Options ([mlp] or [transformer]: that model only; flags take true/false or --noFLAG):
"""


class CLI:
    """sparsenet: truly sparse dynamic sparse training. Commands: train, sweep, table, memory, bench, plot, inspect."""

    @typed
    def train(self, model: str = "mlp", resume: str | None = None, restart: bool = False, **options):
        """Train a model. ``python cli.py train --help`` lists every option (the fields of the recipes'
        configs, sparsenet/train/config.py)."""
        from sparsenet.data import DataError
        from sparsenet.train import CONFIGS, open_run, options_help, result_line
        if options.pop("help", False) or options.pop("h", False):
            print(TRAIN_HELP + options_help(CONFIGS))
            return
        from sparsenet.train import distributed
        run_dir = None
        try:
            distributed.setup()  # under torchrun: join the ranks' process group (gloo)
            recipe, config, run_dir = open_run(model, options, resume, restart)
            stop_on_sigterm()
            summary = recipe.train(config, resume=resume, device=options.get("device") if resume else None)
            distributed.shutdown(wait_for_peers=True)  # finished: the ranks leave the group together
        except (ValueError, DataError) as error:
            if distributed.world_size() == 1:
                raise SystemExit(f"error: {error}")
            # under torchrun each rank that meets it says so; the ranks share stderr, so in one write each
            raise error_exit(f"error: {error}" if distributed.is_main() else f"error (rank {distributed.rank()}): "
                             f"{error}")
        except KeyboardInterrupt as stop:
            saved = run_dir is not None and (run_dir / "checkpoint.pt").exists()
            ranks = distributed.world_size()
            launch = "python" if ranks == 1 else f"torchrun --standalone --nproc_per_node {ranks}"
            exit_code = interrupted(stop, f"resume with: {launch} cli.py train --resume {run_dir}" if saved else
                                    "no checkpoint was written yet, so there is nothing to resume",
                                    quiet=not distributed.is_main())  # under torchrun rank 0 says it
            raise exit_code
        finally:
            distributed.shutdown()
        if distributed.is_main():
            print(result_line(summary))
            print(json.dumps(summary))

    @typed
    def sweep(self, path: str, local: bool = False, dry_run: bool = False, workers: int = 1, count: int | None = None,
              seed: int = 0, runs_dir: str = "runs", data_dir: str | None = None, wandb: str = "offline",
              agents: int = 1, project: str | None = None, entity: str | None = None, nproc_per_node: int = 1,
              device: str | None = None):
        """Run a W&B sweep YAML (sweeps/*.yaml): on W&B when you are logged in, else here.

        Logged in (and without --local): creates the sweep with the W&B API and runs --agents agents here
        (--agents 0 prints the `wandb agent ENTITY/PROJECT/ID` command to start them on other machines).
        Offline or with --local: expands the YAML (grid: every combination; random/bayes: --count seeded
        draws) and runs the runs here into RUNS_DIR/SWEEP/RUN_NAME, --workers at a time. A failed run is
        recorded in RUNS_DIR/SWEEP/failed.jsonl and the sweep goes on; running the sweep again skips
        finished runs and resumes interrupted ones. With --nproc_per_node N every run (local or by a W&B
        agent) is N data-parallel processes launched by torchrun.

        Args:
            path: the sweep YAML, e.g. sweeps/mlp_99_cpu.yaml.
            local: run here even when logged in to W&B.
            dry_run: print the commands of the runs still to do; run nothing.
            workers: local runs at a time (CPU threads are split between them).
            count: random/bayes: number of runs (required); grid: run only the first COUNT.
            seed: seed of the random draws (not of the runs: that is the sweep's `seed` parameter).
            runs_dir: parent of the sweep's folder (default runs/).
            data_dir: passed to every local run as --data_dir (e.g. ../shared/data).
            wandb: W&B mode of local runs: offline (default), online, auto or off.
            agents: W&B agents to run here; 0 prints the agent command instead.
            project: W&B project (default the YAML's `project`, else sparsenet).
            entity: W&B entity (default your default entity).
            nproc_per_node: processes per run (torchrun --standalone on this machine; threads per process
                are the cores split between workers x processes).
            device: every run's --device (auto, cpu, cuda, cuda:N), unless the YAML sets it; checked here first.
        """
        from sparsenet.experiments import sweeps
        from sparsenet.train.tracking import wandb_mode
        stop_on_sigterm()
        try:
            spec = sweeps.load_sweep(path)
            sweeps.check_sweep(spec, sweeps.train_options())
            sweeps.launcher(nproc_per_node)  # a bad process count stops here, before any run
            if device is not None:
                from sparsenet.train.device import resolve_device
                resolve_device(device)  # a device this machine lacks stops here too
            if local or dry_run or wandb_mode("auto") != "online":
                extra = [f"--data_dir={data_dir}"] if data_dir else []
                extra += [f"--device={device}"] if device and "device" not in spec["parameters"] else []
                counts = sweeps.run_local(spec, path, runs_dir, workers, count, seed, dry_run, extra, wandb,
                                          nproc_per_node=nproc_per_node)
                if counts["failed"]:
                    raise SystemExit(1)
            else:
                if device and "device" not in spec["parameters"]:
                    spec = {**spec, "parameters": {**spec["parameters"], "device": {"value": device}}}
                sweeps.run_wandb(spec, project, entity, agents, count, nproc_per_node=nproc_per_node)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        except KeyboardInterrupt as stop:
            raise interrupted(stop, "its runs were stopped at their last checkpoint; run the same command again "
                              "to resume them", what="sweep interrupted")

    @typed
    def table(self, path: str, runs: str = "runs", wandb: str | None = None, out: str | None = None):
        """Print a sweep's results as a markdown table in the paper's layout and write it with a PNG plot;
        or, given a folder of runs (e.g. results/records/mlp_99), print their results table as results/*.md.

        Groups the finished runs by the sweep's non-seed parameters: mean ± standard error over seeds,
        the best per column in bold, the paper's number beside ours where the papers' tables have one (sparsenet/experiments/paper.py). A folder
        of runs: a row per (data set, method) over its seeds, the paper's cell, and each run's command.

        Args:
            path: the sweep YAML, e.g. sweeps/mlp_99_cpu.yaml, or a folder of runs (only printed).
            runs: the folder holding the sweep's runs (default runs/: the local runner's runs/SWEEP/).
            wandb: ENTITY/PROJECT to read the runs from W&B instead (online).
            out: the markdown file to write (default runs/SWEEP/table.md); the PNG goes beside it.
        """
        from sparsenet.experiments.records import records_table
        from sparsenet.experiments.table import build_table
        try:
            print(records_table(path) if Path(path).is_dir() else build_table(path, runs, wandb, out))
        except ValueError as error:
            raise SystemExit(f"error: {error}")

    @typed
    def memory(self, *more_sparsities, model: str = "transformer", dataset: str | None = None,
               sparsity: float | tuple = 0.9, device: str = "auto", steps: int = 20, seed: int = 0,
               out: str | None = None, batch: int | None = None, length: int = 32, precision: str = "fp32"):
        """Measure training memory of the dense model and the sparse one(s): parameters, gradients,
        optimizer state, structure (indices + CSR caches), activation peak and total peak, with the ratio
        to dense. Each model trains for --steps steps on random data (no data set needed) in a fresh process;
        CPU: counted tensor bytes + the process's peak RSS growth; CUDA: torch.cuda.max_memory_allocated.
        On both, one more step gives the allocator's peak (CPU: profiler memory events; CUDA:
        max_memory_allocated): the step's transient bytes and the allocated peak. Prints a table and writes OUT.json
        and OUT.png.

        Args:
            more_sparsities: further sparsities after --sparsity, e.g. --sparsity 0.9 0.95 0.99.
            model: mlp or transformer.
            dataset: sizes the model as the paper does for this data set (mlp: mnist (default),
                fashion_mnist, emnist, digits; transformer: iwslt14 (default), multi30k, wmt17).
            sparsity: sparsity of the sparse model(s); the dense model is always measured too.
            device: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (CUDA refused in one line
                where it is not available).
            steps: training steps per model (at least 1).
            seed: random seed of topology and data.
            out: path stem of the JSON and PNG (default runs/memory/MODEL-DATASET-DEVICE, DEVICE cpu or cuda).
            batch: MLP samples (default 32) or Transformer sentence pairs (default 16).
            length: Transformer source and target tokens per sentence (default 32).
            precision: fp32, or bf16 (forward and loss under bf16 autocast; float32 master values, gradients
                and optimizer state).
        """
        from sparsenet.experiments.training_memory import run_memory
        dataset = dataset or {"mlp": "mnist", "transformer": "iwslt14"}.get(model, "")
        sparsities = [*(sparsity if isinstance(sparsity, (tuple, list)) else [sparsity]), *more_sparsities]
        try:
            print(run_memory(model, dataset, sparsities, device, steps, seed, out, batch, length, precision))
        except ValueError as error:
            raise SystemExit(f"error: {error}")

    @typed
    def bench(self, repeats: int = 20, warmup: int = 5, threads: int | None = None, profile: bool = False,
              device: str = "auto", shapes: str | tuple | None = None, sparsities: float | tuple | None = None):
        """Print the layer speed/memory table: dense fp32, TF32 (CUDA) and bf16 vs dense+mask vs SparseLinear.

        Shapes (out×in, batch): 1568×784/32, 1568×1568/32, 2048×512/1024, 512×2048/1024, and on CUDA
        8192×8192/4096, at sparsity 0.9, 0.95, 0.99, 0.999. Time = median forward+backward ms (CUDA: timed
        with CUDA events); memory = weights + grads + Adam. The first line names the CPU or GPU.

        Args:
            repeats: timed forward+backward steps per cell (median reported); at least 1.
            warmup: untimed steps before timing.
            threads: torch CPU threads (default: torch's choice).
            profile: also split each sparse cell's step time, by timing, into products (the kernel's three
                products alone), copies (what the row-major input and gradient cost over a feature-major
                pair) and bookkeeping (the rest).
            device: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N.
            shapes: OUTxINxBATCH shapes instead of the defaults, e.g. --shapes 8192x8192x4096 (a step of
                that one takes minutes on a CPU).
            sparsities: sparsities instead of the defaults, e.g. --sparsities 0.9,0.99,0.999.
        """
        from tqdm import tqdm

        from sparsenet.experiments.layer_bench import SPARSITIES, bench, check_sparsities, parse_shapes, report
        from sparsenet.train.device import resolve_device
        if repeats < 1 or warmup < 0 or (threads is not None and threads < 1):
            raise SystemExit("error: --repeats and --threads must be >= 1 and --warmup >= 0")
        try:
            target = resolve_device(device)
            shape_list = None if shapes is None else parse_shapes(shapes)
            sparsity_list = SPARSITIES if sparsities is None else check_sparsities(sparsities)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        if threads is not None:
            torch.set_num_threads(threads)
        rows = bench(repeats, warmup, shape_list, sparsity_list, target, profile=profile,
                     progress=lambda items: tqdm(items, desc="shapes", disable=None))
        print(report(rows, repeats, warmup, target))

    @typed
    def plot(self, *paths: str, out: str | None = None, kind: str | None = None, metric: str | None = None,
             layer: str | None = None, title: str | None = None):
        """Draw a figure of runs or measurements and save it (PNG, PDF or SVG).

        Kinds: curves (a metric against epochs or steps, a line per method with a band of ± one standard
        error over seeds, a panel per data set), topology (links, ANP and density over training), memory (a
        `cli.py memory` JSON against sparsity), scale (`python -m benchmarks.scale`'s JSON lines against
        links) and degrees (a sparse layer's degree distributions in checkpoints). Default: degrees with
        --layer, memory for a .json file, scale for another file, curves for folders.

        Args:
            paths: run directories or folders of them (e.g. results/records/mlp_99), or one memory/scale file.
            out: the figure's file, ending in .png, .pdf or .svg (required).
            kind: curves, topology, memory, scale or degrees.
            metric: curves: the metrics.jsonl key to plot (default: MLP test_accuracy, Transformer and LM
                valid_ppl).
            layer: degrees: the sparse layer's name in the model's state dict (e.g. layers.1).
            title: a title over the figure.
        """
        from sparsenet.experiments.plot import plot
        if out is None:
            raise SystemExit("error: --out FILE.png is required (where to save the figure)")
        try:
            plot(list(paths), out, kind, metric, layer, title)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        print(f"wrote {out}")

    @typed
    def inspect(self, init: str = "bsw", shape: tuple = (1568, 1568), density: float = 0.01, beta: float = 0.25,
                r: float = 0.25, degree_dist: str = "fixed", equal_partition: bool = False, seed: int = 0,
                plot: str | None = None):
        """Build one layer's topology and print its measures as JSON.

        Args:
            init: initialiser: er, bsw, bsf, brf or csti (csti correlates scikit-learn's 8x8 digits, 64
                features, so both sizes of --shape must be multiples of 64).
            shape: out,in of the layer, e.g. --shape 1568,784.
            density: share of links, in (0, 1]; nnz = round(density * out * in), at least 1.
            beta: bsw rewiring probability in [0, 1].
            r: brf locality in [0, 1] (0 nearest, 1 uniform).
            degree_dist: brf degrees of the smaller side: fixed or uniform.
            equal_partition: rewire the input side to equal degrees (the BSF fix for a first layer).
            seed: random seed.
            plot: if given, save a log-log degree distribution PNG at this path.
        """
        from sparsenet.topology.report import inspect_layer
        try:
            report = inspect_layer(init, shape, density, seed, plot, equal_partition, beta=beta, r=r,
                                   degree_dist=degree_dist)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        print(json.dumps(report))


def main(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (without the program name; default ``sys.argv[1:]``, as the ``sparsenet``
    console command calls it); ``--plugin MODULE`` (any command, repeatable) imports a module that registers
    methods or rules first."""
    argv = load_plugins(sys.argv[1:] if argv is None else argv)
    check_flags(CLI, argv)
    tune_cpu()  # the glibc allocator keeps freed buffers; subnormals flush to zero
    try:
        fire.Fire(CLI(), command=argv, name=program_name())
    except BrokenPipeError:  # the reader went away (`cli.py table ... | head`): stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1)


def program_name() -> str:
    """How the user called the command line: ``sparsenet`` for the console command, else ``cli.py``."""
    return "sparsenet" if Path(sys.argv[0]).name == "sparsenet" else "cli.py"


if __name__ == "__main__":
    main()
