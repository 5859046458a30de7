"""One run of any recipe, from its config or its checkpoint to its summary: resume, the device, the seeds, the
recipe's build (model, topology, optimizer, engine, batches), the restore, the tracker, the loop, the summary.

A recipe is a module with ``CONFIG`` (its config class), ``load_data(config)`` and ``build(config, data, init
generator, data generator, device) -> Built`` (``sparsenet.train.loop``), and ``summary(built, config, clock,
run_dir) -> dict`` (its result fields; called on every rank, collectives included)."""
import dataclasses
from pathlib import Path

import torch

from ..evolution import TopologyEngine, method_schedule
from ..topology import copy_topology, init_sparse_model, sparse_layers
from .checkpoint import load_checkpoint, load_topologies, remove_stale_temporaries, save_checkpoint, set_rng_state
from .device import grad_scaler, resolve_device
from .distributed import check_world_size, is_main, load_in_turn, restore_rank_rng, seed_rank_stream
from .loop import Clock, links, train_loop
from .tracking import Tracker


def run(recipe, config, resume: str | Path | None = None, device: str | None = None) -> dict:
    """Train ``config`` with ``recipe``, or continue the run in ``resume`` from its checkpoint (its config is
    used; ``device``, if given, replaces the config's: a run resumes on any device); returns the summary (also
    in summary.json; ``{}`` on ranks > 0)."""
    run_dir = Path(resume) if resume else Path(config.out_dir) / config.name
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt") if resume else None  # on the CPU, moved below
    if is_main():
        remove_stale_temporaries(run_dir)  # left by a kill during a checkpoint write
    if checkpoint and "clock" not in checkpoint:
        raise ValueError(f"--resume {run_dir}: its checkpoint was written by a sparsenet before the shared training "
                         f"loop; continue it with that version, or start it again with --restart")
    if checkpoint:
        config = recipe.CONFIG(**{**checkpoint["config"], **({"device": device} if device else {})})
        check_world_size(checkpoint)
    where = resolve_device(config.device)
    data = load_in_turn(lambda: recipe.load_data(config))
    torch.manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    built = recipe.build(config, data, init_generator, data_generator, where)
    seed_rank_stream(config.seed)  # under torchrun: each rank its own dropout
    scaler = grad_scaler(where, config.precision)
    if checkpoint:
        built.model.load_state_dict({k: v.to(where) for k, v in checkpoint["model"].items()})
        built.optimizer.load_state_dict(checkpoint["optimizer"])  # its state follows the parameters' device
        built.engine.load_state_dict(checkpoint["engine"])
        set_rng_state(checkpoint["rng"], {})
        built.batches.load_state(checkpoint["batches"])  # the epoch redrawn, or the stream's generator
        if scaler is not None and "scaler" in checkpoint:
            scaler.load_state_dict(checkpoint["scaler"])
        restore_rank_rng(checkpoint)  # ranks > 0: their own dropout stream
    clock = Clock.from_checkpoint(checkpoint, built.best)
    tracker = Tracker(run_dir, dataclasses.asdict(config), config.wandb, resume=bool(checkpoint))
    evaluations = clock.step // built.eval_every + (clock.step == built.steps and clock.step % built.eval_every > 0)
    tracker.truncate(evaluations)  # one record per evaluation written before the checkpoint
    train_loop(built, tracker, run_dir, clock, device=where, precision=config.precision, scaler=scaler,
               config=dataclasses.asdict(config), quiet=config.quiet)
    result = recipe.summary(built, config, clock, run_dir)
    if not is_main():
        return {}
    model = built.model
    summary = {"model": config.model, "dataset": config.dataset, "method": config.method,
               "sparsity": config.sparsity, "seed": config.seed, **result, "links": links(model),
               "nnz": sum(p.numel() for p in model.parameters()),
               "dense_params": sum(p.numel() for p in model.parameters())
               + sum(l.out_features * l.in_features - l.nnz for l in sparse_layers(model)),
               "device": str(where), "precision": config.precision, "run_dir": str(run_dir)}
    tracker.finish(summary)
    return summary


def init_topology(model, config, generator: torch.Generator, inits, density, **options) -> None:
    """The sparse layers' starting topology and values: ``--init_topology``'s saved links, else the initialisers
    ``inits`` (one name, or one per layer) at ``density`` with the method's value initialiser (``options``: the
    initialisers' own); the dense ``fc`` keeps its model's initialisation."""
    weights = config.engine_method().weights if config.method != "fc" else None
    if config.init_topology:  # validate() ensured a sparse method
        copy_topology(model, load_topologies(config.init_topology), weights, generator)
    elif config.method != "fc":
        init_sparse_model(model, inits, density, weights, generator=generator, **options)


def make_engine(config, model, optimizer, update_interval: int, steps: int, density) -> TopologyEngine:
    """The run's topology engine: the config's method updating every ``update_interval`` of the run's ``steps``
    optimizer steps towards ``density`` (a final density, one per sparse layer, or ``None`` for the dense
    ``fc``); its generator is seeded by the run's seed and lives on the CPU, so every device draws the same
    topology."""
    method = config.engine_method()
    return TopologyEngine(model, optimizer, method, method_schedule(method, update_interval, steps, config.zeta),
                          density=density, seed=config.seed, check_ranks=config.check_ranks)


def load_best(built, run_dir: Path, device: torch.device) -> None:
    """Put the best checkpoint's values into the model (rank 0), keeping the last model as best.pt when no
    evaluation at the final density had a finite score."""
    if not (run_dir / "best.pt").exists():
        save_checkpoint(run_dir / "best.pt", {"model": built.model.state_dict()})
    built.model.load_state_dict(load_checkpoint(run_dir / "best.pt", map_location=device)["model"])
