"""Image-classification recipe (the paper's MLP protocol, method.md §8.1) — a short linear train loop."""
import dataclasses
import math
import os
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data import VisionData, load_vision, split_validation
from ..evolution import DensitySchedule, TopologyEngine, make_method, method_schedule
from ..models import MLP
from ..sparse import check_density
from ..topology import copy_topology, init_sparse_model, sparse_layers
from .checkpoint import (load_checkpoint, load_topologies, remove_stale_temporaries, rng_state, save_checkpoint,
                         set_rng_state)
from .tracking import WANDB_CHOICES, Tracker, default_run_name

METHOD_NAMES = ("fc", "static", "set", "rigl", "mest", "cht", "chts", "chtss")


@dataclass
class ClassifyConfig:
    """Every knob of an MLP run; defaults are the paper's (method.md §8.1) except where a preset says."""
    dataset: str = "digits"
    method: str = "chts"
    sparsity: float = 0.99
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.025
    lr_end_factor: float = 0.01          # linear decay to lr * this ...
    lr_decay_fraction: float = 0.9       # ... over this share of the epochs
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hidden: tuple = (1568, 1568, 1568)
    zeta: float = 0.3
    zeta_decay: str | None = None        # None: the method's (cosine for RigL)
    update_interval: int = 1             # epochs between topology updates
    init: str | None = None              # None: the method's (CSTI for CHT/CHTs, ER for SET/RigL, ...)
    weights: str | None = None
    beta: float = 0.25
    r: float = 0.25
    degree_dist: str = "fixed"
    equal_partition: bool = False
    resort: bool = False
    removal: str | None = None
    regrowth: str | None = None
    percolation: bool | None = None      # None: the method's
    early_stop: float | None = None
    density_schedule: str | None = None
    historical_weights: bool | None = None
    exponent_start: float | None = None  # soft removal exponent, linear over the update window (None: the
    exponent_end: float | None = None    # method's: 1 -> 3, CHTss 1 -> 9)
    mest_lambda: float | None = None     # MEST's |w| + λ|g| (None: the method's 0.01)
    activation: str = "relu"
    valid_fraction: float = 0.1          # stratified, seeded share of the training set held out for selection
    init_topology: str | None = None
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    out_dir: str = "runs"
    run_name: str | None = None
    wandb: str = "auto"
    quiet: bool = False
    model: str = "mlp"

    def validate(self) -> "ClassifyConfig":
        if self.method == "fc":
            self.sparsity = 0.0
        if self.model != "mlp":
            raise ValueError(f"unknown model {self.model!r} for image classification; choose from ['mlp']")
        check_run_options(self)
        if not 0.0 <= self.sparsity < 1.0 or isinstance(self.sparsity, bool):
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        check_positive_ints(self, ("epochs", "batch_size", "update_interval"))
        if isinstance(self.valid_fraction, bool) or not isinstance(self.valid_fraction, (int, float)) \
                or not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        check_sparse_method(self)
        return self

    def engine_method(self):
        name = "static" if self.method == "fc" else self.method
        return make_method(name, init=self.init, weights=self.weights, removal=self.removal,
                           regrowth=self.regrowth, zeta_decay=self.zeta_decay, percolation=self.percolation,
                           early_stop=self.early_stop, density_schedule=self.density_schedule,
                           historical_weights=self.historical_weights, exponent_start=self.exponent_start,
                           exponent_end=self.exponent_end, mest_lambda=self.mest_lambda)

    @property
    def name(self) -> str:
        base = f"mlp-{self.dataset}-{self.method}-s{self.sparsity:g}-seed{self.seed}"
        return self.run_name or default_run_name(base)


PRESETS = {  # per data set: what differs from the paper's MLP protocol
    "digits": dict(hidden=(128, 128, 128), epochs=30, sparsity=0.9),
}
METHOD_PRESETS = {  # per (data set, method): the paper's choice of removal score (method.md §2.2)
    ("fashion_mnist", "chts"): dict(removal="ri_soft"),  # "RI significantly improves results on Fashion MNIST"
}


def check_positive_ints(config, names: tuple) -> None:
    """Raise ``ValueError`` naming the first of ``names`` whose value on ``config`` is not an int > 0."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def as_bool(name: str, value) -> bool:
    """A flag's value as bool: True/False, or the strings true/false in any case (as typed on a command line)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{name} must be true or false, got {value!r}")


BOOL_OPTIONS = ("equal_partition", "resort", "percolation", "historical_weights", "download", "quiet")


def check_output_folder(out_dir, run_name: str | None) -> None:
    """Before any work: ``run_name`` is a plain folder name (it cannot leave ``out_dir``), and the run folder
    can be made, i.e. its nearest existing ancestor is a writable folder and nothing on the way is a file."""
    if run_name is not None and (not isinstance(run_name, str) or run_name in ("", ".", "..")
                                 or "/" in run_name or "\\" in run_name):
        raise ValueError(f"--run_name must be a plain folder name inside --out_dir, got {run_name!r}")
    path = Path(out_dir) / run_name if run_name else Path(out_dir)
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        raise ValueError(f"--out_dir {out_dir}: {path} is a file, not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--out_dir {out_dir}: {path} is not writable")


def check_run_options(config) -> None:
    """The checks both recipes' configs share: the output folder, method, W&B mode, and ``--init_topology``
    (a sparse method and an existing run directory or checkpoint file)."""
    check_output_folder(config.out_dir, config.run_name)
    if config.method not in METHOD_NAMES:
        raise ValueError(f"unknown method {config.method!r}; choose from {list(METHOD_NAMES)}")
    if config.wandb not in WANDB_CHOICES:
        raise ValueError(f"unknown wandb mode {config.wandb!r}; choose from {list(WANDB_CHOICES)}")
    if config.init_topology is None:
        return
    if config.method == "fc":
        raise ValueError("--init_topology needs a sparse method (the dense model has no topology)")
    if not Path(config.init_topology).exists():
        raise ValueError(f"--init_topology {config.init_topology}: no such run directory or checkpoint")


def check_sparse_method(config) -> None:
    """For a sparse method (after the recipe's own sparsity-range check): its density and its settings
    (``config.engine_method()`` raises on an unknown or contradictory rule)."""
    if config.method != "fc":
        check_density(1.0 - config.sparsity)
        method = config.engine_method()
        if config.init_topology is not None and method.density_schedule != "constant":
            raise ValueError(f"--init_topology gives the final topology, but {config.method} starts denser "
                             f"(density schedule {method.density_schedule!r})")


def merge_options(config_class, options: dict, presets: dict, bool_options: tuple = ()) -> dict:
    """Preset values overridden by the given non-None ``options`` (flags parsed with ``as_bool``);
    ``ValueError`` for an option that is not a field of ``config_class``."""
    unknown = set(options) - {f.name for f in dataclasses.fields(config_class)}
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    values = {**presets, **{k: as_bool(k, v) if k in bool_options else v for k, v in options.items() if v is not None}}
    check_numbers(config_class, values)
    return values


def check_numbers(config_class, values: dict) -> None:
    """``ValueError`` naming the option for a value that is not a number (float fields) or not an integer
    (int fields); ``None`` passes where the field allows it. Ranges are the configs' own checks."""
    for field in dataclasses.fields(config_class):
        value = values.get(field.name)
        if value is None:
            continue
        kinds = set(typing.get_args(field.type)) or {field.type}
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if float in kinds and not number:
            raise ValueError(f"--{field.name} must be a number, got {value!r}")
        if int in kinds and float not in kinds and not (number and isinstance(value, int)):
            raise ValueError(f"--{field.name} must be an integer, got {value!r}")


def build_config(**options) -> ClassifyConfig:
    """Defaults, then the data set's preset, then the given (non-None) options."""
    dataset = options.get("dataset") or ClassifyConfig.dataset
    method = options.get("method") or ClassifyConfig.method
    values = merge_options(ClassifyConfig, options,
                           {**PRESETS.get(dataset, {}), **METHOD_PRESETS.get((dataset, method), {})}, BOOL_OPTIONS)
    if "hidden" in values:
        values["hidden"] = tuple(int(h) for h in (values["hidden"] if isinstance(values["hidden"], (tuple, list))
                                                  else [values["hidden"]]))
    return ClassifyConfig(**values).validate()


def _build(config: ClassifyConfig, data: VisionData, generator: torch.Generator):
    method = config.engine_method()
    dense = config.method == "fc"
    density = DensitySchedule(1.0 - config.sparsity, method.density_schedule).start()
    model = MLP(data.features, config.hidden, data.classes, density=density, dense=dense,
                activation=config.activation, generator=generator)
    if config.init_topology:  # validate() ensured a sparse method
        copy_topology(model, load_topologies(config.init_topology), method.weights, generator)
    elif not dense:
        init_sparse_model(model, method.init, density, method.weights, generator=generator,
                          equal_partition=config.equal_partition, resort=config.resort,
                          **_init_options(method.init, config, data))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, config.lr_end_factor,
                                                  max(1, int(config.lr_decay_fraction * config.epochs)))
    steps_per_epoch = math.ceil(data.train_x.shape[0] / config.batch_size)
    schedule = method_schedule(method, steps_per_epoch * config.update_interval, steps_per_epoch * config.epochs,
                               config.zeta)
    engine = TopologyEngine(model, optimizer, method, schedule, density=1.0 - config.sparsity, seed=config.seed)
    return model, optimizer, scheduler, engine, steps_per_epoch


def _init_options(init: str, config: ClassifyConfig, data: VisionData) -> dict:
    return {"bsw": {"beta": config.beta}, "brf": {"r": config.r, "degree_dist": config.degree_dist},
            "csti": {"features": data.train_x}}.get(init, {})


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``x (N, features)``, ``y (N,)`` int64 labels."""
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, x.shape[0], batch):
        logits = model(x[start:start + batch])
        loss += float(F.cross_entropy(logits, y[start:start + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[start:start + batch]).sum())
    model.train()
    return loss / x.shape[0], correct / x.shape[0]


def _links(model) -> int:
    return sum(layer.nnz for layer in sparse_layers(model))


def _dense_params(model) -> int:
    return sum(p.numel() for p in model.parameters()) - sum(l.nnz - l.out_features * l.in_features
                                                             for l in sparse_layers(model))


def _select(best: dict, test_accuracy: float, valid: tuple | None, epoch: int) -> None:
    """Update ``best`` in place with an epoch evaluated at the final density: the maximum test accuracy
    (the paper's protocol) and, with a validation split, the test accuracy of the best-validation epoch
    (the earliest on ties)."""
    if best["test_accuracy"] is None or test_accuracy > best["test_accuracy"]:
        best["test_accuracy"] = test_accuracy
    if valid is not None and (best["valid_accuracy"] is None or valid[1] > best["valid_accuracy"]):
        best.update(valid_accuracy=valid[1], test_accuracy_at_best_valid=test_accuracy, epoch=epoch)


def train(config: ClassifyConfig, resume: str | Path | None = None) -> dict:
    """Train, evaluate every epoch (validation split and test, before that epoch's topology update),
    checkpoint every epoch; returns the summary (also in summary.json).

    Summary accuracies: ``test_accuracy_at_best_valid`` (test accuracy of the epoch with the best
    validation accuracy), ``final_test_accuracy`` and ``best_test_accuracy`` (the maximum over epochs, the
    paper's protocol); the two "best" consider only epochs at the final density (density-decay methods)."""
    run_dir = Path(resume) if resume else Path(config.out_dir) / config.name
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    remove_stale_temporaries(run_dir)  # left by a kill during a checkpoint write
    if checkpoint:
        config = ClassifyConfig(**checkpoint["config"])
    data = split_validation(load_vision(config.dataset, config.data_dir, config.download),  # fails before any
                            config.valid_fraction, config.seed)                              # file is written
    torch.manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    model, optimizer, scheduler, engine, steps_per_epoch = _build(config, data, init_generator)
    start_epoch, global_step, history = 0, 0, {"train_seconds": 0.0}
    best = {"test_accuracy": None, "valid_accuracy": None, "test_accuracy_at_best_valid": None, "epoch": None}
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        engine.load_state_dict(checkpoint["engine"])
        set_rng_state(checkpoint["rng"], {"data": data_generator})
        start_epoch, global_step, best, history = (checkpoint["epoch"], checkpoint["global_step"], checkpoint["best"],
                                                   checkpoint["history"])
    tracker = Tracker(run_dir, dataclasses.asdict(config), config.wandb, resume=bool(checkpoint))
    tracker.truncate(start_epoch)
    n = data.train_x.shape[0]
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        order = torch.randperm(n, generator=data_generator)
        loss_sum, correct = 0.0, 0
        batches = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=config.quiet or None)
        for b in batches:
            index = order[b * config.batch_size:(b + 1) * config.batch_size]
            x, y = data.train_x[index], data.train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            global_step += 1
            loss_sum += loss.item() * y.numel()
            correct += int((logits.argmax(1) == y).sum())
            if b < steps_per_epoch - 1:
                optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        train_seconds = time.perf_counter() - started
        test_loss, test_accuracy = evaluate(model, data.test_x, data.test_y)
        valid = evaluate(model, data.valid_x, data.valid_y) if data.valid_x is not None else None
        if engine.at_final_density(global_step):  # model selection only at the final density
            _select(best, test_accuracy, valid, epoch + 1)
        update = engine.step(global_step)  # at the epoch's end, after evaluating what the epoch trained
        optimizer.zero_grad(set_to_none=True)
        history["train_seconds"] += train_seconds
        record = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                  "test_loss": test_loss, "test_accuracy": test_accuracy,
                  **({"valid_loss": valid[0], "valid_accuracy": valid[1]} if valid else {}),
                  "lr": scheduler.get_last_lr()[0],
                  "links": _links(model), "epoch_seconds": train_seconds,
                  **({"anp": update["anp"], "overlap": update["overlap"], "update_seconds": update["seconds"],
                      "removed": update["removed"], "regrown": update["regrown"]} if update else {})}
        tracker.log(record, step=epoch + 1)
        save_checkpoint(run_dir / "checkpoint.pt", {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "engine": engine.state_dict(), "rng": rng_state({"data": data_generator}), "epoch": epoch + 1,
            "global_step": global_step, "best": best, "history": history, "config": dataclasses.asdict(config)})
        if not config.quiet:
            tqdm.write(file=sys.stderr, s=f"epoch {epoch + 1}: loss {record['train_loss']:.4f}  test acc {test_accuracy:.4f}  "
                       f"links {record['links']}  {train_seconds:.1f}s")
    summary = {"model": config.model, "dataset": config.dataset, "method": config.method,
               "sparsity": config.sparsity, "seed": config.seed, "epochs": config.epochs,
               "test_accuracy_at_best_valid": best["test_accuracy_at_best_valid"],
               "best_valid_accuracy": best["valid_accuracy"], "best_valid_epoch": best["epoch"],
               "final_test_accuracy": evaluate(model, data.test_x, data.test_y)[1],
               "best_test_accuracy": best["test_accuracy"], "valid_fraction": config.valid_fraction,
               "train_seconds": history["train_seconds"], "seconds_per_epoch": history["train_seconds"] / max(
                   1, config.epochs), "links": _links(model),
               "nnz": sum(p.numel() for p in model.parameters()), "dense_params": _dense_params(model),
               "anp": engine.active_neuron_rate(), "run_dir": str(run_dir)}
    tracker.finish(summary)
    return summary
