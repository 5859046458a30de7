"""The one training loop of every recipe, in the order of the authors' trainers: a batch's loss (under the run's
autocast), backward, the gradients summed over the ranks, the step's learning rate, the optimizer step; every
``eval_every`` steps (and at the last) the evaluation *before* that step's topology update, the best model kept
(best.pt) among evaluations at the final density; then the topology update; then the metrics record and the
resumable checkpoint. The MLP's epoch is ``eval_every`` = its steps per epoch.

A step makes no device-to-host synchronisation: the logged loss and counts are summed on the device and read
once per evaluation (and at a mid-interval checkpoint). What a recipe differs in comes in as a ``Built``: its
model, optimizer, engine, batch stream, and the hooks below. Under torchrun the gradients are summed over the
ranks after backward (each rank's loss is its part of the global batch over the global batch's count), and rank
0 alone writes checkpoints."""
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..topology import sparse_layers
from .checkpoint import rng_state, save_checkpoint
from .device import autocast
from .distributed import is_main, rank_rng_states, sum_gradients
from .tracking import Tracker


@dataclass
class Clock:
    """Where a run is, its selection state and the wall time it took, saved in its checkpoint as a dict
    (``"clock"``). The ``interval_*`` fields are the training since the last evaluation: a checkpoint written
    between evaluations keeps them, so the resumed interval logs what an uninterrupted one would."""
    step: int = 0
    best: dict = field(default_factory=dict)  # the recipe's selection state (``Built.select``)
    seconds: float = 0.0  # wall time of training, evaluation and topology updates
    valid_seconds: float = 0.0
    update_seconds: float = 0.0  # topology updates (engine.step)
    fastest: float = math.inf  # seconds per optimizer step of the fastest evaluation interval, no validation/update
    interval_loss: float = 0.0  # sum over the interval's steps of the global batch's loss x its weight
    interval_weight: int = 0
    interval_counts: dict = field(default_factory=dict)  # sums of the recipe's logged counts
    interval_seconds: float = 0.0  # wall time of the interval up to a mid-interval checkpoint
    interval_update_seconds: float = 0.0

    @classmethod
    def from_checkpoint(cls, checkpoint: dict | None, best: dict) -> "Clock":
        """The clock saved in ``checkpoint`` (a field it lacks starts at its default), else a new one whose
        selection state is ``best``."""
        if not checkpoint:
            return cls(best=best)
        saved = checkpoint["clock"]
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})

    def summary(self) -> dict:
        """Timing fields of a run's summary: ``update_overhead`` is the topology updates' time over the optimizer
        steps' time (evaluation excluded from both)."""
        steps_time = self.seconds - self.valid_seconds - self.update_seconds
        return {"train_seconds": self.seconds, "seconds_per_step": None if self.fastest == math.inf else self.fastest,
                "update_seconds": self.update_seconds, "update_overhead": self.update_seconds / max(steps_time, 1e-9)}


class Built:
    """What a recipe's ``build()`` returns: the run's parts and the hooks the loop calls. Attributes: ``model``,
    ``optimizer``, ``engine`` (a ``TopologyEngine``), ``batches`` (a stream with ``next()``, ``state()``,
    ``load_state()``: ``sparsenet.data.batches``), ``steps`` (optimizer steps of the run), ``eval_every``,
    ``unit`` (what a record counts: "step", or "epoch" = ``eval_every`` steps), ``checkpoint_every`` (steps
    between checkpoints inside an evaluation interval, ``None``: at evaluations only) and ``best`` (the initial
    selection state)."""
    unit = "step"
    checkpoint_every = None

    def batch_loss(self, batch) -> tuple[torch.Tensor, int, dict]:
        """``(loss, weight, counts)`` of this rank's part of ``batch``: the loss to backpropagate (summed over
        the ranks: the global batch's), the batch's weight in the interval's mean loss (a Python number), and
        counts to sum over the interval (0-d tensors on the device; a record gets ``train_<name>`` = sum / weight)."""
        raise NotImplementedError

    def learning_rate(self, step: int) -> float:
        """The rate of 1-based optimizer step ``step``."""
        raise NotImplementedError

    def evaluate(self, step: int) -> dict:
        """The evaluation's record fields after ``step`` steps (before the step's topology update)."""
        raise NotImplementedError

    def select(self, record: dict, best: dict, number: int) -> bool:
        """Update the selection state ``best`` in place with an evaluation at the final density (``number``: its
        step or epoch); whether its model is the new best (kept as best.pt)."""
        raise NotImplementedError

    def record_extra(self, update: dict | None, clock: Clock, train_seconds: float) -> dict:
        """Record fields after the topology update (``update``: its statistics, ``None`` if none was due);
        ``train_seconds``: the interval's training time, evaluation and updates excluded."""
        return {}

    def describe(self, record: dict) -> str:
        """The progress line of an evaluation's record."""
        raise NotImplementedError



class SequenceBuilt(Built):
    """The step-based recipes' shared hooks (the Transformer's and the LM's): each evaluation records the
    validation loss and perplexity, the links and the rate; selection keeps the lowest validation loss; a record
    adds the run's time and the topology hash. A subclass gives ``valid_loss()``, the mean validation loss."""

    def valid_loss(self) -> float:
        raise NotImplementedError

    def evaluate(self, step: int) -> dict:
        valid_loss = self.valid_loss()
        return {"valid_loss": valid_loss, "valid_ppl": math.exp(min(valid_loss, 50)), "links": links(self.model),
                "lr": self.learning_rate(step)}

    def select(self, record: dict, best: dict, number: int) -> bool:
        if record["valid_loss"] < best["valid_loss"]:
            best["valid_loss"] = record["valid_loss"]
            return True
        return False

    def record_extra(self, update: dict | None, clock: Clock, train_seconds: float) -> dict:
        return {"seconds": clock.seconds, "update_seconds": clock.update_seconds,
                **({"topology_hash": self.engine.topology_hash()} if self.engine.layers else {})}

    def describe(self, record: dict) -> str:
        return (f"step {record['step']}: train loss {record['train_loss']:.3f}  valid loss {record['valid_loss']:.3f} "
                f"(ppl {record['valid_ppl']:.2f})")


def train_loop(built: Built, tracker: Tracker, run_dir: Path, clock: Clock, *, device: torch.device, precision: str,
               scaler: torch.amp.GradScaler | None, config: dict, quiet: bool) -> Clock:
    """Train from ``clock.step`` to ``built.steps``; ``clock`` is updated in place and returned. Checkpoints go to
    ``run_dir/checkpoint.pt`` (every field needed to resume exactly, ``config`` among them)."""
    model, optimizer, engine = built.model, built.optimizer, built.engine
    quiet = quiet or not is_main()
    progress = tqdm(total=built.steps, initial=clock.step, disable=quiet or None, desc="steps")
    started = time.perf_counter() - clock.interval_seconds
    names = list(clock.interval_counts)  # the recipe's counts, in its order
    sums = (None if not clock.interval_weight else  # the interval's loss and counts, on the device
            torch.tensor([clock.interval_loss, *clock.interval_counts.values()], dtype=torch.float64, device=device))
    while clock.step < built.steps:
        with autocast(device, precision):
            loss, weight, counts = built.batch_loss(built.batches.next())
        (scaler.scale(loss) if scaler is not None else loss).backward()
        logged = torch.stack([loss.detach().double(), *(c.double() for c in counts.values())])
        logged = sum_gradients(model.parameters(), logged)  # the global batch's numbers, with the gradients
        clock.step += 1
        for group in optimizer.param_groups:
            group["lr"] = built.learning_rate(clock.step)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        weighted = torch.cat([logged[:1] * weight, logged[1:]])
        names, sums = list(counts), weighted if sums is None else sums + weighted
        clock.interval_weight += weight
        progress.update()
        evaluating = clock.step % built.eval_every == 0 or clock.step == built.steps
        number = clock.step // built.eval_every if built.unit == "epoch" else clock.step
        if evaluating:  # before this step's topology update, as the authors' trainers
            valid_started = time.perf_counter()
            with autocast(device, precision):
                fields = built.evaluate(clock.step)
            validating = time.perf_counter() - valid_started
            if engine.at_final_density(clock.step) and built.select(fields, clock.best, number) and is_main():
                save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
        update = engine.step(clock.step)
        clock.interval_update_seconds += update["seconds"] if update else 0.0
        optimizer.zero_grad(set_to_none=True)
        if evaluating:
            interval = time.perf_counter() - started
            train_seconds = interval - validating - clock.interval_update_seconds
            steps = clock.step - (clock.step - 1) // built.eval_every * built.eval_every  # in this interval
            clock.seconds += interval
            clock.valid_seconds += validating
            clock.update_seconds += clock.interval_update_seconds
            clock.fastest = min(clock.fastest, train_seconds / steps)
            totals = sums.tolist()  # the interval's one read of the logged numbers
            record = {built.unit: number, "train_loss": totals[0] / clock.interval_weight,
                      **{f"train_{name}": total / clock.interval_weight for name, total in zip(names, totals[1:])},
                      **fields, **built.record_extra(update, clock, train_seconds)}
            tracker.log(record, step=number)
            started, sums = time.perf_counter(), None
            clock.interval_loss, clock.interval_weight, clock.interval_counts = 0.0, 0, {}
            clock.interval_seconds, clock.interval_update_seconds = 0.0, 0.0
            _save(built, run_dir, clock, scaler, config)
            if not quiet:
                tqdm.write(built.describe(record), file=sys.stderr)
        elif built.checkpoint_every and clock.step % built.eval_every % built.checkpoint_every == 0:
            totals = sums.tolist()
            clock.interval_loss, clock.interval_counts = totals[0], dict(zip(names, totals[1:]))
            clock.interval_seconds = time.perf_counter() - started
            _save(built, run_dir, clock, scaler, config)
    progress.close()
    return clock


def _save(built: Built, run_dir: Path, clock: Clock, scaler, config: dict) -> None:
    """The resumable checkpoint (every rank takes part: ``rank_rng_states`` gathers the ranks' RNG states)."""
    state = {"model": built.model.state_dict(), "optimizer": built.optimizer.state_dict(),
             "engine": built.engine.state_dict(), "batches": built.batches.state(), "rng": rng_state({}),
             "clock": dataclasses.asdict(clock), "config": config,
             **({"scaler": scaler.state_dict()} if scaler is not None else {}), **rank_rng_states()}
    if is_main():
        save_checkpoint(run_dir / "checkpoint.pt", state)


def links(model) -> int:
    """Links in the model's sparse layers."""
    return sum(layer.nnz for layer in sparse_layers(model))
