"""sparsenet command line. Run ``python cli.py COMMAND --help`` for a command's options."""
import difflib
import inspect
import json
import signal
import sys
import time
from pathlib import Path

import fire
import torch

from sparsenet.runtime import tune_cpu_allocator


DEFAULTS = dict(method="chts", seed=0, download=False, out_dir="runs", wandb="auto", quiet=False, restart=False)
_SHARED = {"dataset", "method", "sparsity", "seed", "init", "weights", "beta", "removal", "regrowth", "zeta",
           "exponent_start", "exponent_end", "mest_lambda",
           "update_interval", "init_topology", "data_dir", "out_dir", "run_name", "wandb", "quiet"}
RECIPES = {  # which train options each model takes
    "mlp": _SHARED | {"epochs", "r", "degree_dist", "equal_partition", "resort", "percolation", "early_stop",
                      "density_schedule", "historical_weights", "zeta_decay",
                      "batch_size", "lr", "momentum", "weight_decay", "hidden", "lr_end_factor", "lr_decay_fraction",
                      "activation", "valid_fraction", "download"},
    "transformer": _SHARED | {"preset", "train_steps", "warmup_steps", "lr_factor", "batch_tokens", "eval_every",
                              "beam_size", "length_penalty", "src_lang", "tgt_lang", "d_model", "heads", "layers",
                              "d_ff", "vocab_size", "tie_embeddings", "download"},
}


class CLI:
    """sparsenet: truly sparse dynamic sparse training. Commands: train, sweep, table, memory, bench, inspect."""

    def train(self, model: str = "mlp", dataset: str | None = None, method: str = "chts", sparsity: float | None = None,
              seed: int = 0, init: str | None = None, weights: str | None = None, beta: float | None = None,
              removal: str | None = None, regrowth: str | None = None, zeta: float | None = None,
              update_interval: int | None = None, init_topology: str | None = None, epochs: int | None = None, r: float | None = None,
              degree_dist: str | None = None, equal_partition: bool | None = None, resort: bool | None = None,
              percolation: bool | None = None, early_stop: float | None = None, density_schedule: str | None = None,
              historical_weights: bool | None = None, exponent_start: float | None = None,
              exponent_end: float | None = None, mest_lambda: float | None = None, zeta_decay: str | None = None, batch_size: int | None = None,
              lr: float | None = None, momentum: float | None = None, weight_decay: float | None = None,
              hidden: tuple | None = None, lr_end_factor: float | None = None, lr_decay_fraction: float | None = None,
              activation: str | None = None, valid_fraction: float | None = None, preset: str | None = None, train_steps: int | None = None,
              warmup_steps: int | None = None, lr_factor: float | None = None, batch_tokens: int | None = None,
              eval_every: int | None = None, beam_size: int | None = None, length_penalty: float | None = None,
              src_lang: str | None = None, tgt_lang: str | None = None, d_model: int | None = None,
              heads: int | None = None, layers: int | None = None, d_ff: int | None = None,
              vocab_size: int | None = None, tie_embeddings: str | None = None, data_dir: str | None = None, download: bool = False,
              out_dir: str = "runs", run_name: str | None = None, wandb: str = "auto", quiet: bool = False,
              resume: str | None = None, restart: bool = False):
        """Train a model; print progress, a readable result line, and the summary JSON last.

        With no arguments: CHTs on scikit-learn's bundled 8x8 digits (offline, a few seconds), a
        64-128-128-128-10 MLP at 90% sparsity. The paper's MLP: --dataset mnist (99%, 100 epochs). The
        paper's Transformer: --model transformer --dataset multi30k|iwslt14|wmt17 (90%); --preset cpu
        for a laptop-sized Multi30k run.

        Args:
            model: mlp (image classification) or transformer (translation).
            dataset: mlp: digits (default), mnist, fashion_mnist, emnist (official balanced IDX files),
                emnist_bymerge_test_split (the staged substitute, split 80/20 stratified); transformer:
                multi30k (default), iwslt14, wmt17 (fairseq-prepared train/valid/test.{en,de}), wmt_sample.
            method: fc (dense), static, set, rigl, mest, cht, chts or chtss.
            sparsity: share of absent links in the sparse layers (default 0.99 MLP, 0.9 Transformer; 0.9 digits).
            seed: random seed; the same seed gives the same topology and loss curve on CPU.
            init: topology initialiser er, bsw, bsf, brf or csti (default: the method's; MLP CHT/CHTs use
                CSTI, Transformer CHT/CHTs BSW).
            weights: value initialiser swi, kaiming, xavier or zeros (default: the method's; Xavier for the
                Transformer).
            beta: BSW rewiring probability (default 0.25).
            removal: override the removal rule: wm, wm_signed (per sign, SET's), ri, mest, or wm/ri/mest
                with _soft (default: the method's; SET and CHT wm_signed; CHTs on
                fashion_mnist uses ri_soft, as the paper found RI better there).
            regrowth: override the regrowth rule: random, gradient, ch3_l3p, ch3_l3n, ch2_l3n, or *_soft.
            zeta: removal fraction per update, in [0, 1) (default 0.3).
            update_interval: between topology updates: epochs for the MLP (default 1), optimizer steps for
                the Transformer (default 200 Multi30k, 100 IWSLT14/WMT17).
            init_topology: a run directory (or its checkpoint.pt / best.pt) whose final topology every sparse
                layer starts from instead of --init (the paper's Appendix C: static sparse training on the
                topology CHTs found); layer shapes must match. Values are initialised afresh by --weights.
            epochs: MLP training epochs (default 100; 30 for digits).
            r: MLP, BRF locality (default 0.25).
            degree_dist: MLP, BRF degree distribution, fixed or uniform.
            equal_partition: MLP, BSF fix: equal input degrees in the first layer.
            resort: MLP, BSF fix: align hidden-neuron degrees between layers.
            percolation: MLP, remove dead neurons' links after removal (default: the method's; on for CHT*).
            early_stop: MLP, stop all topology updates once every layer has had an update whose
                removed∩regrown/regrown exceeded this (CHT: 0.9; flagged layers keep evolving until then).
            density_schedule: MLP, constant, elastic (MEST) or sigmoid (CHTss, from 50% density).
            historical_weights: MLP, regrown links restart from their last value instead of 0.
            exponent_start: soft-removal exponent at step 0, linear to exponent_end at the end of the update
                window (default: the method's, 1).
            exponent_end: soft-removal exponent at the end of the update window (default: the method's, 3;
                CHTss 9).
            mest_lambda: MEST's removal score |w| + lambda·|gradient| (default 0.01, the authors'). MEST's
                elastic turnover removes everything above the final density, so --zeta does not apply.
            zeta_decay: MLP, constant or cosine (default: the method's).
            batch_size: MLP batch (default 32).
            lr: MLP initial learning rate (default 0.025), decayed linearly to 1% over 90% of the epochs.
            momentum: MLP SGD momentum (default 0.9).
            weight_decay: MLP weight decay (default 5e-4).
            hidden: MLP hidden widths, e.g. --hidden 1568,1568,1568.
            lr_end_factor: MLP final lr as a share of --lr (default 0.01).
            lr_decay_fraction: MLP share of the epochs over which the lr decays (default 0.9).
            activation: MLP relu, gelu or tanh (default relu).
            valid_fraction: MLP, share of each class's training images held out (seeded) as a validation
                split for model selection (default 0.1; 0 trains on the whole training set, the paper's
                protocol, and reports no at-best-validation accuracy).
            preset: Transformer sizes and schedule: paper (default) or cpu (Multi30k on a laptop).
            train_steps: Transformer optimizer steps (paper: 20000 Multi30k/IWSLT14, 80000 WMT17).
            warmup_steps: Transformer noam warm-up (paper: 3000 / 6000 / 8000).
            lr_factor: Transformer noam factor (paper: 0.25 Multi30k, 2 IWSLT14/WMT17).
            batch_tokens: Transformer tokens per batch (paper: 1024 / 10240 / 12000).
            eval_every: Transformer steps between validations and checkpoints (default 1000).
            beam_size: Transformer test decoding beam (default 2, as the paper).
            length_penalty: Transformer beam length penalty alpha (GNMT/Wu; default 1).
            src_lang: Transformer source language (default en).
            tgt_lang: Transformer target language (default de).
            d_model: Transformer width (default 512).
            heads: Transformer attention heads (default 8).
            layers: Transformer encoder and decoder layers (default 6).
            d_ff: Transformer FFN width (paper: 1024 Multi30k, 2048 IWSLT14/WMT17).
            vocab_size: Transformer joint BPE vocabulary (default per data set: 8000 / 10000 / 40000).
            tie_embeddings: Transformer embedding sharing over the joint BPE: source_target (default: one
                embedding for both languages, a separate generator), all (one matrix for both embeddings and
                the generator, fairseq's share-all-embeddings) or none (three matrices, the authors' OpenNMT).
            data_dir: data folder (default $SPARSENET_DATA, else ~/.cache/sparsenet).
            download: fetch missing data from the official source. MLP: the IDX files (sha256-checked).
                Transformer: iwslt14 / wmt17 archives, prepared as fairseq's scripts do (sacreBLEU's 13a
                tokeniser standing in for Moses); multi30k and wmt_sample are read from --data_dir.
            out_dir: parent of the run directory (default runs/).
            run_name: run directory name (default MODEL-DATASET-METHOD-sSPARSITY-seedSEED).
            wandb: auto (offline unless logged in; WANDB_MODE respected), online, offline or off.
            quiet: no progress bars or progress lines.
            resume: a run directory to continue from its last checkpoint; takes no other option (the
                run's own config is used).
            restart: start again from scratch in a run directory that already holds a checkpoint (without
                it, such a command stops and says how to resume).

        Ctrl-C or SIGTERM stops the run at once and exits 130 or 143; the last checkpoint (written after every
        epoch or evaluation) is intact, and --resume continues from it exactly.
        """
        from sparsenet.data import DataError
        from sparsenet.train import classify, translate
        run_name = None if run_name is None else str(run_name)  # Fire reads --run_name 2024 as a number
        options = {k: v for k, v in locals().items() if k not in ("self", "model", "resume", "restart", "DataError",
                                                                   "classify", "translate")}
        run_dir = None
        try:
            if model not in RECIPES:
                raise ValueError(f"unknown model {model!r}; choose from {sorted(RECIPES)}")
            recipe = classify if model == "mlp" else translate
            given = {k: v for k, v in options.items() if v is not None and v != DEFAULTS.get(k)}
            if resume:
                if given:
                    raise ValueError(f"--resume takes no other options (the run's config is used); got "
                                     f"{', '.join('--' + k for k in given)}")
                if not (Path(resume) / "checkpoint.pt").exists():
                    raise ValueError(f"--resume {resume}: no checkpoint.pt there")
                config, run_dir = None, Path(resume)
                saved = json.loads((Path(resume) / "config.json").read_text()).get("model", "mlp")
                recipe = classify if saved == "mlp" else translate  # the run's own recipe
            else:
                foreign = sorted(set(given) - RECIPES[model])
                if foreign:
                    raise ValueError(f"{', '.join('--' + k for k in foreign)} do(es) not apply to --model {model}")
                config = recipe.build_config(**{k: v for k, v in options.items() if k in RECIPES[model]})
                run_dir = Path(config.out_dir) / config.name
                check_fresh_run_dir(run_dir, restart)
            signal.signal(signal.SIGTERM, _terminate)
            summary = recipe.train(config, resume=resume)
        except (ValueError, DataError) as error:
            raise SystemExit(f"error: {error}")
        except KeyboardInterrupt as stop:
            saved = run_dir is not None and (run_dir / "checkpoint.pt").exists()
            raise interrupted(stop, f"resume with: python cli.py train --resume {run_dir}" if saved else
                              "no checkpoint was written yet, so there is nothing to resume")
        shape = "dense" if summary["method"] == "fc" else f"{summary['sparsity']:.0%} sparse"
        if "best_test_accuracy" in summary:
            at_valid = summary["test_accuracy_at_best_valid"]
            result = (f"test accuracy {'n/a' if at_valid is None else f'{at_valid:.2%}'} at the best validation "
                      f"epoch (final {summary['final_test_accuracy']:.2%}, best over epochs "
                      f"{summary['best_test_accuracy']:.2%})")
        else:
            result = f"BLEU {summary.get('bleu', float('nan')):.2f} (sacreBLEU {summary.get('sacrebleu', float('nan')):.2f})"
        print(f"{summary['dataset']} · {summary['method']} · {shape}: {result} with {summary['links']:,} links in "
              f"the sparse layers, {summary['nnz']:,} parameters in all (dense model: {summary['dense_params']:,}); "
              f"{summary['train_seconds']:.1f} s of training")
        print(json.dumps(summary))

    def sweep(self, path: str, local: bool = False, dry_run: bool = False, workers: int = 1, count: int | None = None,
              seed: int = 0, runs_dir: str = "runs", data_dir: str | None = None, wandb: str = "offline",
              agents: int = 1, project: str | None = None, entity: str | None = None):
        """Run a W&B sweep YAML (sweeps/*.yaml): on W&B when you are logged in, else here.

        Logged in (and without --local): creates the sweep with the W&B API and runs --agents agents here
        (--agents 0 prints the `wandb agent ENTITY/PROJECT/ID` command to start them on other machines).
        Offline or with --local: expands the YAML (grid: every combination; random/bayes: --count seeded
        draws) and runs the runs here into RUNS_DIR/SWEEP/RUN_NAME, --workers at a time. A failed run is
        recorded in RUNS_DIR/SWEEP/failed.jsonl and the sweep goes on; running the sweep again skips
        finished runs and resumes interrupted ones.

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
        """
        from sparsenet.train import sweeps
        from sparsenet.train.tracking import wandb_mode
        signal.signal(signal.SIGTERM, _terminate)
        try:
            spec = sweeps.load_sweep(path)
            sweeps.check_sweep(spec, sweeps.train_options(CLI.train))
            if local or dry_run or wandb_mode("auto") != "online":
                extra = [f"--data_dir={data_dir}"] if data_dir else []
                counts = sweeps.run_local(spec, path, runs_dir, workers, count, seed, dry_run, extra, wandb)
                if counts["failed"]:
                    raise SystemExit(1)
            else:
                sweeps.run_wandb(spec, project, entity, agents, count)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        except KeyboardInterrupt as stop:
            raise interrupted(stop, "its runs were stopped at their last checkpoint; run the same command again "
                              "to resume them", what="sweep interrupted")

    def table(self, path: str, runs: str = "runs", wandb: str | None = None, out: str | None = None):
        """Print a sweep's results as a markdown table in the paper's layout and write it with a PNG plot.

        Groups the finished runs by the sweep's non-seed parameters: mean ± standard error over seeds,
        the best per column in bold, the paper's number beside ours where method.md §7 has one.

        Args:
            path: the sweep YAML, e.g. sweeps/mlp_99_cpu.yaml.
            runs: the folder holding the sweep's runs (default runs/: the local runner's runs/SWEEP/).
            wandb: ENTITY/PROJECT to read the runs from W&B instead (online).
            out: the markdown file to write (default runs/SWEEP/table.md); the PNG goes beside it.
        """
        from sparsenet.train.table import build_table
        try:
            print(build_table(path, runs, wandb, out))
        except ValueError as error:
            raise SystemExit(f"error: {error}")

    def memory(self, *more_sparsities, model: str = "transformer", dataset: str | None = None,
               sparsity: float | tuple = 0.9, device: str = "cpu", steps: int = 20, seed: int = 0,
               out: str | None = None, batch: int | None = None, length: int = 32):
        """Measure training memory of the dense model and the sparse one(s): parameters, gradients,
        optimizer state, structure (indices + CSR caches), activation peak and total peak, with the ratio
        to dense. Each model trains for --steps steps on random data (no data set needed) in a fresh process;
        CPU: counted tensor bytes + the process's peak RSS growth; CUDA: torch.cuda.max_memory_allocated.
        Prints a table and writes OUT.json and OUT.png.

        Args:
            more_sparsities: further sparsities after --sparsity, e.g. --sparsity 0.9 0.95 0.99.
            model: mlp or transformer.
            dataset: sizes the model as the paper does for this data set (mlp: mnist (default),
                fashion_mnist, emnist, digits; transformer: iwslt14 (default), multi30k, wmt17).
            sparsity: sparsity of the sparse model(s); the dense model is always measured too.
            device: cpu or cuda (refused when CUDA is not available).
            steps: training steps per model (at least 1).
            seed: random seed of topology and data.
            out: path stem of the JSON and PNG (default runs/memory/MODEL-DATASET-DEVICE).
            batch: MLP samples (default 32) or Transformer sentence pairs (default 16).
            length: Transformer source and target tokens per sentence (default 32).
        """
        from sparsenet.train.memory import run_memory
        dataset = dataset or {"mlp": "mnist", "transformer": "iwslt14"}.get(model, "")
        sparsities = [*(sparsity if isinstance(sparsity, (tuple, list)) else [sparsity]), *more_sparsities]
        try:
            print(run_memory(model, dataset, sparsities, device, steps, seed, out, batch, length))
        except ValueError as error:
            raise SystemExit(f"error: {error}")

    def bench(self, repeats: int = 20, warmup: int = 5, threads: int | None = None):
        """Print the layer speed/memory table: dense vs dense+mask vs SparseLinear.

        Shapes (out×in, batch): 1568×784/32, 1568×1568/32, 2048×512/1024, 512×2048/1024, at sparsity
        0.9, 0.95, 0.99, 0.999. Time = median forward+backward ms; memory = weights + grads + Adam.

        Args:
            repeats: timed forward+backward steps per cell (median reported); at least 1.
            warmup: untimed steps before timing.
            threads: torch CPU threads (default: torch's choice).
        """
        from tqdm import tqdm

        from benchmarks.layer_speed import run
        if repeats < 1 or warmup < 0:
            raise SystemExit("error: --repeats must be >= 1 and --warmup >= 0")
        if threads is not None:
            torch.set_num_threads(threads)
        print(run(repeats, warmup, progress=lambda shapes: tqdm(shapes, desc="shapes", disable=None)))

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
        from sparsenet.topology import equal_partition as flatten_inputs, make_topology
        from sparsenet.topology.report import describe, plot_degrees
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
            raise SystemExit(f"error: --shape must be two positive integers out,in; got {shape!r}")
        options = {"bsw": {"beta": beta}, "brf": {"r": r, "degree_dist": degree_dist}}.get(init, {})
        if init == "csti":
            from sklearn.datasets import load_digits
            options = {"features": torch.from_numpy(load_digits().data).float()}
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        try:
            indices = make_topology(init, shape[0], shape[1], density, generator, **options)
            if equal_partition:
                indices = flatten_inputs(indices, tuple(shape), generator)
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        report = {"init": init, **{k: v for k, v in options.items() if k != "features"}, "seed": seed,
                  "seconds": round(time.perf_counter() - start, 4), **describe(indices, tuple(shape))}
        if plot:
            report["plot"] = str(plot_degrees(indices, tuple(shape), plot, f"{init} {shape[0]}x{shape[1]}"))
        print(json.dumps(report))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, like Ctrl-C (checkpoints are atomic, so any point is safe)."""


def _terminate(signum, frame):
    raise Terminated


def interrupted(stop: KeyboardInterrupt, advice: str, what: str = "interrupted") -> SystemExit:
    """Print ``WHAT (Ctrl-C|SIGTERM); ADVICE`` on stderr; the exit to raise: 130 for Ctrl-C, 143 for SIGTERM."""
    terminated = isinstance(stop, Terminated)
    print(f"{what} ({'SIGTERM' if terminated else 'Ctrl-C'}); {advice}", file=sys.stderr)
    return SystemExit(143 if terminated else 130)


def check_fresh_run_dir(run_dir: Path, restart: bool) -> None:
    """Refuse to start over a run directory that holds a checkpoint, unless ``restart``: re-running a command
    would otherwise overwrite an interrupted (or finished) run."""
    if restart or not (run_dir / "checkpoint.pt").exists():
        return
    if (run_dir / "summary.json").exists():
        raise ValueError(f"{run_dir} holds a finished run; pass --restart to train it again from scratch, or "
                         f"--run_name to train beside it")
    raise ValueError(f"{run_dir} holds an unfinished run; continue it with --resume {run_dir}, or pass --restart to "
                     f"start it again from scratch")


def check_flags(argv: list[str]) -> None:
    """Refuse an unknown ``--option`` of a command in one line before anything runs (Fire reports unused
    arguments only after the command has run, e.g. after a whole training run)."""
    if not argv or argv[0].startswith("-") or not callable(getattr(CLI, argv[0], None)):
        return
    valid = set(inspect.signature(getattr(CLI, argv[0])).parameters) - {"self"}
    for token in argv[1:]:
        if token == "--":
            break
        if not token.startswith("--") or token == "--help":
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        if name in valid or (name.startswith("no") and name[2:] in valid):  # Fire's --noflag
            continue
        close = difflib.get_close_matches(name, sorted(valid), n=1)
        hint = f"did you mean --{close[0]}?" if close else f"see python cli.py {argv[0]} --help"
        raise SystemExit(f"error: unknown option --{name} for {argv[0]}; {hint}")


if __name__ == "__main__":
    check_flags(sys.argv[1:])
    tune_cpu_allocator()
    fire.Fire(CLI(), name="cli.py")
