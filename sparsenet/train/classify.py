"""Image-classification recipe (the paper's MLP protocol, the CHTss paper's Table 4): SGD with momentum, a linear
learning-rate decay per epoch, evaluation (validation split and test) at each epoch's end before its topology
update, the paper's best-over-epochs test accuracy and the test accuracy at the best validation epoch."""
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..data import EpochBatches, VisionData, load_vision, split_validation
from ..data.vision import DATASETS, image_shape
from ..evolution import DensitySchedule
from ..evolution.linkpred import DEFAULT_BUDGET
from ..evolution.regrowth import REGROWTHS
from ..models import MLP
from ..runtime import peak_rss_bytes
from ..topology import sparse_layers
from ..topology.registry import INITIALIZERS
from .config import (METHOD_OPTIONS, RunConfig, above_zero, fraction, method_defaults, option, positive_int,
                     with_presets)
from .device import autocast
from .distributed import all_sum, check_divides, is_main, local_world_size, shard
from .loop import Built, Clock
from .memory_plan import check_plan, plan_mlp
from .run import init_topology, make_engine, run
from .tracking import default_run_name



@dataclass
class ClassifyConfig(RunConfig):
    """Every knob of an MLP run; defaults are the paper's (the CHTss paper's Table 4) except where a preset says."""
    epochs: int = option(100, "training epochs (30 on digits).", positive_int)
    batch_size: int = option(32, "training batch.", positive_int)
    lr: float = option(0.025, "initial SGD learning rate, decayed linearly to lr * lr_end_factor over "
                       "lr_decay_fraction of the epochs.")
    lr_end_factor: float = option(0.01, "final learning rate as a share of --lr.")
    lr_decay_fraction: float = option(0.9, "share of the epochs over which the learning rate decays.")
    momentum: float = option(0.9, "SGD momentum.")
    weight_decay: float = option(5e-4, "SGD weight decay.")
    hidden: tuple = option((1568, 1568, 1568), "hidden widths, e.g. --hidden 1568,1568,1568 (128,128,128 on "
                           "digits).")
    activation: str = option("relu", "relu, gelu or tanh.")
    zeta_decay: str | None = option(None, "constant or cosine ζ over the updates (default: the method's; cosine "
                                    "for RigL and CHTss).")
    r: float = option(0.25, "BRF locality in [0, 1] (0 nearest, 1 uniform).")
    degree_dist: str = option("fixed", "BRF degree distribution of the smaller side: fixed or uniform.")
    equal_partition: bool = option(False, "BSF fix: equal input degrees in the first layer.")
    resort: bool = option(False, "BSF fix: align hidden-neuron degrees between layers.")
    percolation: bool | None = option(None, "remove dead neurons' links after removal (default: the method's; "
                                      "on for CHT, CHTs, CHTss).")
    early_stop: float | None = option(None, "stop all topology updates once every layer has had an update whose "
                                      "removed∩regrown/regrown exceeded this (default: the method's, CHT 0.9); "
                                      "flagged layers keep evolving until then.")
    density_schedule: str | None = option(None, "constant, elastic (MEST) or sigmoid (CHTss, from 50% density) "
                                          "(default: the method's).")
    historical_weights: bool | None = option(None, "regrown links restart from their last value instead of 0.")
    links_per_neuron: float | None = option(None, "give each sparse layer K·(in + out)/2 links, K per neuron on "
                                            "average (ERK-shaped, as RigL's), instead of one --sparsity for every "
                                            "layer; for very wide MLPs, where one sparsity leaves the 784-input "
                                            "layer nearly empty (--hidden 333334,333333,333333 --links_per_neuron "
                                            "10: a million neurons, 8.3M links). The run's sparsity is derived.",
                                            above_zero())
    hidden_init: str | None = option(None, "topology initialiser of the hidden-to-hidden layers (default: "
                                     "--init's). CSTI tiles the inputs' correlation over a layer; where a tile "
                                     "keeps only a few dozen links (wide layers, --links_per_neuron) it links a "
                                     "few percent of the neurons (100k² at 10 links per neuron: 5%): there use "
                                     "e.g. --init csti --hidden_init bsw (CSTI where the layer sees the pixels).")
    checkpoint_every: int | None = option(None, "also checkpoint every N training steps inside an epoch, for "
                                          "long epochs (a resumed run continues mid-epoch exactly); default: "
                                          "after each epoch only.", positive_int)
    memory_limit: float | None = option(None, "GiB the run may take: the memory plan printed before training "
                                        "must fit (default: the machine's available memory).", above_zero(" GiB"))
    valid_fraction: float = option(0.1, "share of each class's training images held out (seeded) for model "
                                   "selection; 0 trains on the whole training set (the paper's protocol) and "
                                   "reports no at-best-validation accuracy.", fraction)

    def check_relations(self) -> None:
        """The model and data set; ``--links_per_neuron`` sets the run's sparsity; under torchrun the batch
        splits over the ranks."""
        if self.model != "mlp":
            raise ValueError(f"unknown model {self.model!r} for image classification; choose from ['mlp']")
        if image_shape(self.dataset) is None:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {list(DATASETS)}")
        if self.links_per_neuron is not None:
            if self.method == "fc":
                raise ValueError("--links_per_neuron sets a sparse topology; the dense fc has none")
            sizes = [a * b for a, b in self.sparse_shapes()]
            self.sparsity = 1.0 - sum(d * n for d, n in zip(self.final_densities(), sizes)) / sum(sizes)
            if self.sparsity <= 0.0:
                raise ValueError(f"--links_per_neuron {self.links_per_neuron:g} makes every hidden layer dense; "
                                 "use --method fc")
        check_divides(self.batch_size, "batch_size")  # under torchrun: each rank takes batch_size / ranks

    def check_preflight(self) -> None:
        """``--hidden_init``, and CH3-L3p's path factors at this size."""
        if self.hidden_init is not None:
            if self.method == "fc":
                raise ValueError("--hidden_init sets a sparse topology; the dense fc has none")
            if self.hidden_init not in INITIALIZERS:
                raise ValueError(f"unknown hidden_init {self.hidden_init!r}; choose from {sorted(INITIALIZERS)}")
            if self.init_topology is not None:
                raise ValueError("--hidden_init and --init_topology both set the starting topology; give one")
        self._check_path_scoring()

    def _check_path_scoring(self) -> None:
        """Refuse a regrowth rule whose preflight refuses a layer (CH3-L3p where its path factors would not fit:
        the first update would fail) before any work, from the layers' mean degrees."""
        regrowth = self.engine_method().regrowth_kind if self.method != "fc" else None
        preflight = regrowth and REGROWTHS[regrowth].preflight
        if not preflight:
            return
        for (a, b), density in zip(self.sparse_shapes(), map(max, self.start_densities(), self.final_densities())):
            links = density * a * b  # the rule's check from the layer's mean degrees
            try:
                preflight(torch.full((b,), links / b), torch.full((a,), links / a), DEFAULT_BUDGET)
            except ValueError as error:
                raise ValueError(f"{regrowth} regrowth on the {a}->{b} layer {error}") from None

    def link_prediction(self) -> str | None:
        """The CH variant the regrowth scores with ("CH3-L3p", ...), ``None`` for random or gradient regrowth."""
        regrowth = self.engine_method().regrowth_kind if self.method != "fc" else None
        return REGROWTHS[regrowth].link_prediction if regrowth else None

    def layer_sizes(self) -> tuple:
        """Inputs, hidden widths, classes: the sizes a topology must have been made for."""
        features, classes = image_shape(self.dataset) or (None, None)
        return (features, *map(int, self.hidden), classes)

    def sparse_shapes(self) -> list[tuple[int, int]]:
        """``(in, out)`` of each hidden layer (the sparse ones; the output layer is dense)."""
        sizes = self.layer_sizes()
        return list(zip(sizes[:-2], sizes[1:-1]))

    def final_densities(self) -> list[float]:
        """Each hidden layer's final density: ``1 - sparsity``, or ``K (in + out) / (2 in out)`` (at most 1)
        with ``--links_per_neuron K``."""
        if self.links_per_neuron is None:
            return [1.0 - self.sparsity] * len(self.hidden)
        return [min(1.0, self.links_per_neuron * (a + b) / (2 * a * b)) for a, b in self.sparse_shapes()]

    def start_densities(self) -> list[float]:
        """Each hidden layer's density at the start (the method's density schedule: CHTss starts at 50%)."""
        schedule = self.engine_method().density_schedule
        return [DensitySchedule(d, schedule).start() for d in self.final_densities()]

    def parameter_counts(self) -> tuple[int, int]:
        """``(links at the start density, dense parameters)`` of the MLP (``(0, 0)`` for an unknown data set)."""
        sizes = self.layer_sizes()
        if None in sizes:
            return 0, 0
        hidden = [a * b for a, b in self.sparse_shapes()]
        dense = sizes[-2] * sizes[-1] + sum(sizes[1:])
        if self.method == "fc":
            return 0, sum(hidden) + dense
        return sum(round(d * n) for d, n in zip(self.start_densities(), hidden)), dense

    @property
    def name(self) -> str:
        shape = f"s{self.sparsity:g}" if self.links_per_neuron is None else f"k{self.links_per_neuron:g}"
        base = f"mlp-{self.dataset}-{self.method}-{shape}-seed{self.seed}"
        return self.run_name or default_run_name(base)


PRESETS = {  # per data set: what differs from the paper's MLP protocol
    "digits": dict(hidden=(128, 128, 128), epochs=30, sparsity=0.9),
}


def build_config(**options) -> ClassifyConfig:
    """Defaults, then the data set's preset and the method's recipe defaults (``METHOD_DEFAULTS``: CHT updates
    every 3 epochs), then the given (non-None) options; validated."""
    dataset = options.get("dataset") or ClassifyConfig.dataset
    method = options.get("method") or ClassifyConfig.method
    recipe = {k: v for k, v in method_defaults("mlp", dataset, method).items() if k not in METHOD_OPTIONS}
    if options.get("links_per_neuron") is not None and options.get("sparsity") is not None:
        raise ValueError("give --sparsity or --links_per_neuron, not both (the links per neuron set the sparsity)")
    return with_presets(ClassifyConfig, options, {**PRESETS.get(dataset, {}), **recipe}).validate()


def _build(config: ClassifyConfig, data: VisionData, generator: torch.Generator,
           device: torch.device = torch.device("cpu")):
    """``(model, optimizer, learning_rate, engine, steps_per_epoch)`` of a run: the MLP and its starting topology
    from ``generator`` (on the CPU, then moved to ``device``), SGD, the learning rate of each 1-based step, and the
    topology engine updating every ``update_interval`` epochs."""
    dense = config.method == "fc"
    density = config.start_densities()
    model = MLP(data.features, config.hidden, data.classes, density=density, dense=dense,
                activation=config.activation, generator=generator)
    init = config.engine_method().init
    inits = [init] + [config.hidden_init or init] * (len(config.hidden) - 1)
    options = {k: v for init in set(inits) for k, v in _init_options(init, config, data).items()}
    init_topology(model, config, generator, inits, density, equal_partition=config.equal_partition,
                  resort=config.resort, **options)
    if not dense and not config.init_topology and "csti" in inits:
        _warn_unlinked(model)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(data.train_x.shape[0] / config.batch_size)
    rates = epoch_rates(config)
    engine = make_engine(config, model, optimizer, steps_per_epoch * config.update_interval,
                         steps_per_epoch * config.epochs, None if dense else config.final_densities())
    return model, optimizer, lambda step: rates[(step - 1) // steps_per_epoch], engine, steps_per_epoch


def epoch_rates(config: ClassifyConfig) -> list[float]:
    """The learning rate of each epoch and the one after the last: ``lr`` decayed linearly to ``lr *
    lr_end_factor`` over ``lr_decay_fraction`` of the epochs, as ``torch.optim.lr_scheduler.LinearLR`` steps it
    (its own rounding, so runs keep their numbers)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, config.lr_end_factor,
                                                  max(1, int(config.lr_decay_fraction * config.epochs)))
    rates = [scheduler.get_last_lr()[0]]
    with warnings.catch_warnings():  # stepped without optimizer steps, on purpose
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(config.epochs):
            scheduler.step()
            rates.append(scheduler.get_last_lr()[0])
    return rates


def _warn_unlinked(model: MLP) -> None:
    """One stderr line per sparse layer that leaves more than half of its output neurons without links."""
    for number, layer in enumerate(sparse_layers(model), 1):
        linked = int(torch.unique(layer.indices[0]).numel())
        if linked < layer.out_features / 2:
            print(f"warning: layer {number} ({layer.in_features}->{layer.out_features}) starts with links on only "
                  f"{linked:,} of its {layer.out_features:,} neurons (CSTI at this width); consider --hidden_init bsw",
                  file=sys.stderr)


def _init_options(init: str, config: ClassifyConfig, data: VisionData) -> dict:
    return {"bsw": {"beta": config.beta}, "brf": {"r": config.r, "degree_dist": config.degree_dist},
            "csti": {"features": data.train_x}}.get(init, {})


def evaluation_chunk(hidden: tuple) -> int:
    """Images per evaluation forward: 1000, fewer for layers so wide that chunk x width would pass 2**25
    (128 MiB of float32 activations)."""
    return max(1, min(1000, 2**25 // max(map(int, hidden))))


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``x (N, features)``, ``y (N,)`` int64 labels (under torchrun each
    rank evaluates its part and the sums are reduced)."""
    model.eval()
    loss, correct = 0.0, 0
    part_x, part_y = shard(x), shard(y)
    for start in range(0, part_x.shape[0], batch):
        logits = model(part_x[start:start + batch])
        loss += float(F.cross_entropy(logits, part_y[start:start + batch], reduction="sum"))
        correct += int((logits.argmax(1) == part_y[start:start + batch]).sum())
    model.train()
    loss, correct = all_sum(loss, correct)
    return loss / x.shape[0], correct / x.shape[0]


def _links(model) -> int:
    return sum(layer.nnz for layer in sparse_layers(model))


def _select(best: dict, test_accuracy: float, valid: tuple | None, epoch: int) -> bool:
    """Update ``best`` in place with an epoch evaluated at the final density: the maximum test accuracy
    (the paper's protocol) and, with a validation split, the test accuracy of the best-validation epoch
    (the earliest on ties); whether this epoch is the new best-validation one."""
    if best["test_accuracy"] is None or test_accuracy > best["test_accuracy"]:
        best["test_accuracy"] = test_accuracy
    if valid is not None and (best["valid_accuracy"] is None or valid[1] > best["valid_accuracy"]):
        best.update(valid_accuracy=valid[1], test_accuracy_at_best_valid=test_accuracy, epoch=epoch)
        return True
    return False


def load_data(config: ClassifyConfig) -> VisionData:
    """The data set with its validation split (seeded); fails before any file is written."""
    return split_validation(load_vision(config.dataset, config.data_dir, config.download), config.valid_fraction,
                            config.seed)


def build(config: ClassifyConfig, data: VisionData, init_generator: torch.Generator,
          data_generator: torch.Generator, device: torch.device) -> "Classify":
    """The run's parts, after its memory plan is checked (before the model exists) and printed."""
    chunk = evaluation_chunk(config.hidden)
    plan = plan_mlp(config.layer_sizes(), list(map(max, config.start_densities(), config.final_densities())),
                    config.batch_size, chunk, 1 if config.momentum else 0,
                    sum(t.numel() * t.element_size() for t in vars(data).values() if isinstance(t, torch.Tensor)),
                    dense=config.method == "fc", link_prediction=config.link_prediction())
    check_plan(plan, config.memory_limit, local_world_size())
    if not config.quiet and is_main():
        print(plan.describe(), file=sys.stderr)
    return Classify(config, data, init_generator, data_generator, device, chunk)


class Classify(Built):
    """An MLP run: an epoch is a seeded permutation of the training images cut into batches (``eval_every`` =
    its steps); evaluation on the validation split and the test set; selection by validation accuracy."""
    unit = "epoch"

    def __init__(self, config: ClassifyConfig, data: VisionData, init_generator: torch.Generator,
                 data_generator: torch.Generator, device: torch.device, chunk: int):
        self.config, self.device, self.chunk = config, device, chunk
        self.model, self.optimizer, self.learning_rate, self.engine, self.eval_every = _build(
            config, data, init_generator, device)
        self.steps, self.checkpoint_every = self.eval_every * config.epochs, config.checkpoint_every
        self.best = {"test_accuracy": None, "valid_accuracy": None, "test_accuracy_at_best_valid": None, "epoch": None}
        self.train_x, self.train_y, self.test_x, self.test_y = (t.to(device) for t in (
            data.train_x, data.train_y, data.test_x, data.test_y))
        self.valid = None if data.valid_x is None else (data.valid_x.to(device), data.valid_y.to(device))
        images = data.train_x.shape[0]
        self.batches = EpochBatches(lambda g: torch.randperm(images, generator=g).split(config.batch_size),
                                    data_generator)

    def batch_loss(self, index: torch.Tensor):
        part = shard(index).to(self.device)  # this rank's part of the global batch (all of it in one process)
        y = self.train_y[part]
        logits = self.model(self.train_x[part])
        loss = F.cross_entropy(logits, y, reduction="sum") / index.numel()  # summed over ranks: the mean
        return loss, index.numel(), {"accuracy": (logits.argmax(1) == y).sum()}

    def evaluate(self, step: int) -> dict:
        test_loss, test_accuracy = evaluate(self.model, self.test_x, self.test_y, self.chunk)
        valid = evaluate(self.model, *self.valid, self.chunk) if self.valid else None
        return {"test_loss": test_loss, "test_accuracy": test_accuracy,
                **({"valid_loss": valid[0], "valid_accuracy": valid[1]} if valid else {}),
                "lr": self.learning_rate(step + 1)}  # the next epoch's

    def select(self, record: dict, best: dict, number: int) -> bool:
        valid = (record["valid_loss"], record["valid_accuracy"]) if "valid_accuracy" in record else None
        return _select(best, record["test_accuracy"], valid, number)

    def record_extra(self, update: dict | None, clock: Clock, train_seconds: float) -> dict:
        return {"links": _links(self.model), "epoch_seconds": train_seconds, "peak_rss_bytes": peak_rss_bytes(),
                **({"anp": update["anp"], "overlap": update["overlap"], "update_seconds": update["seconds"],
                    "removed": update["removed"], "regrown": update["regrown"],
                    "layer_overlaps": [layer["overlap"] for layer in update["layers"]],  # CHT's early stop
                    "topology_hash": update["topology_hash"]} if update else {})}

    def describe(self, record: dict) -> str:
        return (f"epoch {record['epoch']}: loss {record['train_loss']:.4f}  test acc {record['test_accuracy']:.4f}  "
                f"links {record['links']}  {record['epoch_seconds']:.1f}s")


def summary(built: Classify, config: ClassifyConfig, clock: Clock, run_dir: Path) -> dict:
    """Accuracies: ``test_accuracy_at_best_valid`` (test accuracy of the epoch with the best validation
    accuracy), ``final_test_accuracy`` and ``best_test_accuracy`` (the maximum over epochs, the paper's
    protocol); the two "best" consider only epochs at the final density (density-decay methods)."""
    with autocast(built.device, config.precision):
        final = evaluate(built.model, built.test_x, built.test_y, built.chunk)[1]
    best = clock.best
    train_seconds = clock.seconds - clock.valid_seconds - clock.update_seconds
    return {"epochs": config.epochs, "test_accuracy_at_best_valid": best["test_accuracy_at_best_valid"],
            "best_valid_accuracy": best["valid_accuracy"], "best_valid_epoch": best["epoch"],
            "final_test_accuracy": final, "best_test_accuracy": best["test_accuracy"],
            "valid_fraction": config.valid_fraction, "train_seconds": train_seconds,
            "seconds_per_epoch": train_seconds / max(1, config.epochs), "anp": built.engine.active_neuron_rate()}


def train(config: ClassifyConfig, resume: str | Path | None = None, device: str | None = None) -> dict:
    """Train (or, with ``resume``, continue) an MLP run; returns the summary (also in summary.json)."""
    return run(sys.modules[__name__], config, resume, device)


CONFIG = ClassifyConfig
