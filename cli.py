"""sparsenet command line. Run ``python cli.py COMMAND --help`` for a command's options."""
import json
import time
from pathlib import Path

import fire
import torch

from sparsenet.runtime import tune_cpu_allocator


DEFAULTS = dict(dataset="digits", method="chts", seed=0, download=False, out_dir="runs", wandb="auto", quiet=False)


class CLI:
    """sparsenet: truly sparse dynamic sparse training. Commands: train, bench, inspect."""

    def train(self, model: str = "mlp", dataset: str = "digits", method: str = "chts", sparsity: float | None = None,
              epochs: int | None = None, seed: int = 0, init: str | None = None, weights: str | None = None,
              beta: float | None = None, r: float | None = None, degree_dist: str | None = None,
              equal_partition: bool | None = None, resort: bool | None = None, removal: str | None = None,
              regrowth: str | None = None, percolation: bool | None = None, early_stop: float | None = None,
              density_schedule: str | None = None, historical_weights: bool | None = None,
              exponent_start: float | None = None, exponent_end: float | None = None,
              zeta: float | None = None, zeta_decay: str | None = None,
              update_interval: int | None = None, batch_size: int | None = None, lr: float | None = None,
              momentum: float | None = None, weight_decay: float | None = None, hidden: tuple | None = None,
              lr_end_factor: float | None = None, lr_decay_fraction: float | None = None,
              activation: str | None = None,
              data_dir: str | None = None, download: bool = False, out_dir: str = "runs",
              run_name: str | None = None, wandb: str = "auto", quiet: bool = False, resume: str | None = None):
        """Train a model; print per-epoch lines, a readable result line, and the summary JSON last.

        With no arguments: CHTs on scikit-learn's bundled 8x8 digits (offline, under a minute), a
        64-128-128-128-10 MLP at 90% sparsity. The paper's setting: --dataset mnist --sparsity 0.99.

        Args:
            model: mlp (the Transformer recipe is not available yet).
            dataset: digits, mnist, fashion_mnist, emnist (official balanced IDX files) or
                emnist_bymerge_test_split (the staged EMNIST substitute, split 80/20 stratified).
            method: fc (dense), static, set, rigl, mest, cht, chts or chtss.
            sparsity: share of absent links in the sparse layers, in [0, 1) (default 0.99; 0.9 for digits).
            epochs: training epochs (default 100; 30 for digits).
            seed: random seed; the same seed gives the same topology and loss curve on CPU.
            init: topology initialiser er, bsw, bsf, brf or csti (default: the method's; CSTI for CHT/CHTs).
            weights: value initialiser swi, kaiming, xavier or zeros (default: the method's).
            beta: BSW rewiring probability (default 0.25).
            r: BRF locality (default 0.25).
            degree_dist: BRF degree distribution, fixed or uniform.
            equal_partition: BSF fix, equal input degrees in the first layer.
            resort: BSF fix, align hidden-neuron degrees between layers.
            removal: override the removal rule: wm, ri, mest, or *_soft (default: the method's; CHTs on
                fashion_mnist uses ri_soft, as the paper found RI better there).
            regrowth: override the regrowth rule: random, gradient, ch3_l3p, ch3_l3n, ch2_l3n, or *_soft.
            percolation: remove dead neurons' links after removal (default: the method's; on for CHT*).
            early_stop: freeze a layer once removed∩regrown/regrown exceeds this (CHT: 0.9).
            density_schedule: constant, elastic (MEST) or sigmoid (CHTss, from 50% density).
            historical_weights: regrown links restart from their last value instead of 0.
            exponent_start: soft-removal exponent at the first update (default 1).
            exponent_end: soft-removal exponent at the last update (default 3).
            zeta: removal fraction per update, in [0, 1) (default 0.3).
            zeta_decay: constant or cosine (default: the method's).
            update_interval: epochs between topology updates (default 1).
            batch_size: default 32.
            lr: initial learning rate (default 0.025), decayed linearly to 1% over 90% of the epochs.
            momentum: SGD momentum (default 0.9).
            weight_decay: default 5e-4.
            hidden: hidden widths, e.g. --hidden 1568,1568,1568.
            lr_end_factor: final lr as a share of --lr (default 0.01).
            lr_decay_fraction: share of the epochs over which the lr decays (default 0.9).
            activation: relu, gelu or tanh (default relu).
            data_dir: data folder (default $SPARSENET_DATA, else ~/.cache/sparsenet).
            download: fetch missing data files from the official source (sha256-checked).
            out_dir: parent of the run directory (default runs/).
            run_name: run directory name (default mlp-DATASET-METHOD-sSPARSITY-seedSEED).
            wandb: auto (offline unless logged in; WANDB_MODE respected), online, offline or off.
            quiet: no progress bars or per-epoch lines.
            resume: a run directory to continue from its last checkpoint; takes no other option (the
                run's own config is used).
        """
        from sparsenet.data import DataError
        from sparsenet.train.classify import build_config, train
        if model != "mlp":
            raise SystemExit(f"error: unknown model {model!r} for now; choose from ['mlp']")
        options = dict(dataset=dataset, method=method, sparsity=sparsity, epochs=epochs, seed=seed, init=init,
                       weights=weights, beta=beta, r=r, degree_dist=degree_dist, equal_partition=equal_partition,
                       resort=resort, removal=removal, regrowth=regrowth, percolation=percolation,
                       early_stop=early_stop, density_schedule=density_schedule,
                       historical_weights=historical_weights, exponent_start=exponent_start,
                       exponent_end=exponent_end, zeta=zeta, zeta_decay=zeta_decay,
                       update_interval=update_interval, batch_size=batch_size, lr=lr, momentum=momentum,
                       weight_decay=weight_decay, hidden=hidden, lr_end_factor=lr_end_factor,
                       lr_decay_fraction=lr_decay_fraction, activation=activation, data_dir=data_dir,
                       download=download,
                       out_dir=out_dir, run_name=run_name, wandb=wandb, quiet=quiet)
        try:
            if resume:
                given = [k for k, v in options.items() if v != DEFAULTS.get(k)]
                if given or model != "mlp":
                    raise ValueError(f"--resume takes no other options (the run's config is used); got "
                                     f"{', '.join('--' + k for k in given)}")
                if not (Path(resume) / "checkpoint.pt").exists():
                    raise ValueError(f"--resume {resume}: no checkpoint.pt there")
            config = build_config(**options)
            summary = train(config, resume=resume)
        except (ValueError, DataError) as error:
            raise SystemExit(f"error: {error}")
        shape = "dense" if summary["method"] == "fc" else f"{summary['sparsity']:.0%} sparse"
        print(f"{summary['dataset']} · {summary['method']} · {shape}: best test accuracy "
              f"{summary['best_test_accuracy']:.2%} (final {summary['final_test_accuracy']:.2%}) with "
              f"{summary['links']:,} links in the sparse layers, {summary['nnz']:,} parameters in all "
              f"(dense model: {summary['dense_params']:,}); {summary['train_seconds']:.1f} s of training")
        print(json.dumps(summary))

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


if __name__ == "__main__":
    tune_cpu_allocator()
    fire.Fire(CLI(), name="cli.py")
