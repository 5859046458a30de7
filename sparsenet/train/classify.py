"""Image-classification recipe (the paper's MLP protocol, method.md §8.1) — a short linear train loop."""
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data import VisionData, load_vision, split_validation
from ..data.vision import DATASETS, image_shape
from ..evolution import DensitySchedule, TopologyEngine, method_schedule
from ..evolution.linkpred import DEFAULT_BUDGET
from ..evolution.regrowth import REGROWTHS
from ..models import MLP
from ..runtime import peak_rss_bytes
from ..topology import copy_topology, init_sparse_model, sparse_layers
from ..topology.registry import INITIALIZERS
from .checkpoint import (load_checkpoint, load_topologies, remove_stale_temporaries, rng_state, save_checkpoint,
                         set_rng_state)
from .config import (METHOD_OPTIONS, RunConfig, check_fraction, check_free_space, check_positive_ints,
                     check_run_options, check_sparse_method, method_defaults, option, with_presets)
from .distributed import (all_sum, check_divides, check_world_size, is_main, load_in_turn, local_world_size,
                          rank_rng_states, restore_rank_rng, seed_rank_stream, shard, sum_gradients)
from .memory_plan import check_plan, plan_mlp
from .tracking import Tracker, default_run_name


@dataclass
class ClassifyConfig(RunConfig):
    """Every knob of an MLP run; defaults are the paper's (method.md §8.1) except where a preset says."""
    epochs: int = option(100, "training epochs (30 on digits).")
    batch_size: int = option(32, "training batch.")
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
                                            "10: a million neurons, 8.3M links). The run's sparsity is derived.")
    hidden_init: str | None = option(None, "topology initialiser of the hidden-to-hidden layers (default: "
                                     "--init's). CSTI tiles the inputs' correlation over a layer; where a tile "
                                     "keeps only a few dozen links (wide layers, --links_per_neuron) it links a "
                                     "few percent of the neurons (100k² at 10 links per neuron: 5%): there use "
                                     "e.g. --init csti --hidden_init bsw (CSTI where the layer sees the pixels).")
    checkpoint_every: int | None = option(None, "also checkpoint every N training steps inside an epoch, for "
                                          "long epochs (a resumed run continues mid-epoch exactly); default: "
                                          "after each epoch only.")
    memory_limit: float | None = option(None, "GiB the run may take: the memory plan printed before training "
                                        "must fit (default: the machine's available memory).")
    valid_fraction: float = option(0.1, "share of each class's training images held out (seeded) for model "
                                   "selection; 0 trains on the whole training set (the paper's protocol) and "
                                   "reports no at-best-validation accuracy.")

    def validate(self) -> "ClassifyConfig":
        if self.model != "mlp":
            raise ValueError(f"unknown model {self.model!r} for image classification; choose from ['mlp']")
        if image_shape(self.dataset) is None:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {list(DATASETS)}")
        if self.links_per_neuron is not None:
            if self.method == "fc":
                raise ValueError("--links_per_neuron sets a sparse topology; the dense fc has none")
            if not self.links_per_neuron > 0:
                raise ValueError(f"--links_per_neuron must be > 0, got {self.links_per_neuron!r}")
            sizes = [a * b for a, b in self.sparse_shapes()]
            self.sparsity = 1.0 - sum(d * n for d, n in zip(self.final_densities(), sizes)) / sum(sizes)
            if self.sparsity <= 0.0:
                raise ValueError(f"--links_per_neuron {self.links_per_neuron:g} makes every hidden layer dense; "
                                 "use --method fc")
        check_run_options(self)
        check_positive_ints(self, ("epochs", "batch_size", *(("checkpoint_every",) if self.checkpoint_every
                                                             is not None else ())))
        check_divides(self.batch_size, "batch_size")  # under torchrun: each rank takes batch_size / ranks
        if self.memory_limit is not None and not self.memory_limit > 0:
            raise ValueError(f"--memory_limit must be > 0 GiB, got {self.memory_limit!r}")
        check_fraction(self, "valid_fraction")
        check_sparse_method(self)
        if self.hidden_init is not None:
            if self.method == "fc":
                raise ValueError("--hidden_init sets a sparse topology; the dense fc has none")
            if self.hidden_init not in INITIALIZERS:
                raise ValueError(f"unknown hidden_init {self.hidden_init!r}; choose from {sorted(INITIALIZERS)}")
            if self.init_topology is not None:
                raise ValueError("--hidden_init and --init_topology both set the starting topology; give one")
        self._check_path_scoring()
        check_free_space(self)
        return self

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


def _build(config: ClassifyConfig, data: VisionData, generator: torch.Generator):
    method = config.engine_method()
    dense = config.method == "fc"
    density = config.start_densities()
    model = MLP(data.features, config.hidden, data.classes, density=density, dense=dense,
                activation=config.activation, generator=generator)
    if config.init_topology:  # validate() ensured a sparse method
        copy_topology(model, load_topologies(config.init_topology), method.weights, generator)
    elif not dense:
        inits = [method.init] + [config.hidden_init or method.init] * (len(config.hidden) - 1)
        options = {k: v for init in set(inits) for k, v in _init_options(init, config, data).items()}
        init_sparse_model(model, inits, density, method.weights, generator=generator,
                          equal_partition=config.equal_partition, resort=config.resort, **options)
        if "csti" in inits:
            _warn_unlinked(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, config.lr_end_factor,
                                                  max(1, int(config.lr_decay_fraction * config.epochs)))
    steps_per_epoch = math.ceil(data.train_x.shape[0] / config.batch_size)
    schedule = method_schedule(method, steps_per_epoch * config.update_interval, steps_per_epoch * config.epochs,
                               config.zeta)
    engine = TopologyEngine(model, optimizer, method, schedule, density=None if dense else config.final_densities(),
                            seed=config.seed, check_ranks=config.check_ranks)
    return model, optimizer, scheduler, engine, steps_per_epoch


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
    if is_main():
        remove_stale_temporaries(run_dir)  # left by a kill during a checkpoint write
    if checkpoint:
        config = ClassifyConfig(**checkpoint["config"])
        check_world_size(checkpoint)
    quiet = config.quiet or not is_main()
    data = load_in_turn(lambda: split_validation(  # fails before any file is written
        load_vision(config.dataset, config.data_dir, config.download), config.valid_fraction, config.seed))
    chunk = evaluation_chunk(config.hidden)
    plan = plan_mlp(config.layer_sizes(), list(map(max, config.start_densities(), config.final_densities())),
                    config.batch_size, chunk, 1 if config.momentum else 0,
                    sum(t.numel() * t.element_size() for t in vars(data).values() if isinstance(t, torch.Tensor)),
                    dense=config.method == "fc", link_prediction=config.link_prediction())
    check_plan(plan, config.memory_limit, local_world_size())  # before the model exists
    if not quiet:
        print(plan.describe(), file=sys.stderr)
    torch.manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    model, optimizer, scheduler, engine, steps_per_epoch = _build(config, data, init_generator)
    seed_rank_stream(config.seed)
    start_epoch, global_step, history = 0, 0, {"train_seconds": 0.0}
    best = {"test_accuracy": None, "valid_accuracy": None, "test_accuracy_at_best_valid": None, "epoch": None}
    within = {"position": 0, "loss_sum": 0.0, "correct": 0, "seconds": 0.0}  # a mid-epoch checkpoint's progress
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        engine.load_state_dict(checkpoint["engine"])
        set_rng_state(checkpoint["rng"], {"data": data_generator})  # mid-epoch: the epoch's start
        restore_rank_rng(checkpoint)  # ranks > 0: their own stream
        start_epoch, global_step, best, history = (checkpoint["epoch"], checkpoint["global_step"], checkpoint["best"],
                                                   checkpoint["history"])
        within = checkpoint.get("within", within)  # absent from checkpoints written before mid-epoch ones
    tracker = Tracker(run_dir, dataclasses.asdict(config), config.wandb, resume=bool(checkpoint))
    tracker.truncate(start_epoch)
    n = data.train_x.shape[0]
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter() - within["seconds"]
        epoch_start = data_generator.get_state()
        order = torch.randperm(n, generator=data_generator)
        loss_sum, correct = within["loss_sum"], within["correct"]
        batches = tqdm(range(within["position"], steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}",
                       leave=False, disable=quiet or None, initial=within["position"], total=steps_per_epoch)
        for b in batches:
            index = order[b * config.batch_size:(b + 1) * config.batch_size]  # the global batch
            part = shard(index)  # this rank's part of it (all of it in one process)
            x, y = data.train_x[part], data.train_y[part]
            logits = model(x)
            loss = F.cross_entropy(logits, y, reduction="sum") / index.numel()  # summed over ranks: the mean
            loss.backward()
            batch_loss, batch_correct = sum_gradients(model.parameters(), loss.item(),  # and the logged numbers
                                                      int((logits.argmax(1) == y).sum()))
            optimizer.step()
            global_step += 1
            loss_sum += batch_loss * index.numel()
            correct += int(batch_correct)
            if b < steps_per_epoch - 1:  # the last batch's gradients stay for the topology update
                optimizer.zero_grad(set_to_none=True)
                if config.checkpoint_every and (b + 1) % config.checkpoint_every == 0:
                    state = {  # every rank: rank_rng_states() gathers the ranks' RNG states
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "engine": engine.state_dict(),
                        "rng": {**rng_state({}), "data": epoch_start}, "epoch": epoch, "global_step": global_step,
                        "best": best, "history": history, "config": dataclasses.asdict(config),
                        "within": {"position": b + 1, "loss_sum": loss_sum, "correct": correct,
                                   "seconds": time.perf_counter() - started}, **rank_rng_states()}
                    if is_main():
                        save_checkpoint(run_dir / "checkpoint.pt", state)
        within = {"position": 0, "loss_sum": 0.0, "correct": 0, "seconds": 0.0}
        scheduler.step()
        train_seconds = time.perf_counter() - started
        test_loss, test_accuracy = evaluate(model, data.test_x, data.test_y, chunk)
        valid = evaluate(model, data.valid_x, data.valid_y, chunk) if data.valid_x is not None else None
        if engine.at_final_density(global_step):  # model selection only at the final density
            _select(best, test_accuracy, valid, epoch + 1)
        update = engine.step(global_step)  # at the epoch's end, after evaluating what the epoch trained
        optimizer.zero_grad(set_to_none=True)
        history["train_seconds"] += train_seconds
        record = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                  "test_loss": test_loss, "test_accuracy": test_accuracy,
                  **({"valid_loss": valid[0], "valid_accuracy": valid[1]} if valid else {}),
                  "lr": scheduler.get_last_lr()[0],
                  "links": _links(model), "epoch_seconds": train_seconds, "peak_rss_bytes": peak_rss_bytes(),
                  **({"anp": update["anp"], "overlap": update["overlap"], "update_seconds": update["seconds"],
                      "removed": update["removed"], "regrown": update["regrown"],
                      "layer_overlaps": [layer["overlap"] for layer in update["layers"]],  # CHT's early stop
                      "topology_hash": update["topology_hash"]} if update else {})}
        tracker.log(record, step=epoch + 1)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "engine": engine.state_dict(), "rng": rng_state({"data": data_generator}), "epoch": epoch + 1,
                 "global_step": global_step, "best": best, "history": history, "config": dataclasses.asdict(config),
                 **rank_rng_states()}
        if is_main():
            save_checkpoint(run_dir / "checkpoint.pt", state)
        if not quiet:
            tqdm.write(file=sys.stderr, s=f"epoch {epoch + 1}: loss {record['train_loss']:.4f}  test acc "
                       f"{test_accuracy:.4f}  links {record['links']}  {train_seconds:.1f}s")
    summary = {"model": config.model, "dataset": config.dataset, "method": config.method,
               "sparsity": config.sparsity, "seed": config.seed, "epochs": config.epochs,
               "test_accuracy_at_best_valid": best["test_accuracy_at_best_valid"],
               "best_valid_accuracy": best["valid_accuracy"], "best_valid_epoch": best["epoch"],
               "final_test_accuracy": evaluate(model, data.test_x, data.test_y, chunk)[1],
               "best_test_accuracy": best["test_accuracy"], "valid_fraction": config.valid_fraction,
               "train_seconds": history["train_seconds"], "seconds_per_epoch": history["train_seconds"] / max(
                   1, config.epochs), "links": _links(model),
               "nnz": sum(p.numel() for p in model.parameters()), "dense_params": _dense_params(model),
               "anp": engine.active_neuron_rate(), "run_dir": str(run_dir)}
    tracker.finish(summary)
    return summary
