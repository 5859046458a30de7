"""The step loop of the step-based recipes (translation, language modelling), in the order of the authors'
trainer: a batch's loss, backward, the step's learning rate, the optimizer step; every ``eval_every`` steps
(and at the last) validation *before* that step's topology update, the best checkpoint kept among
evaluations at the final density; then the topology update; then the metrics record and the resumable
checkpoint. What a recipe differs in (its batches, loss, schedule, validation, data position) comes in as
functions. Under torchrun the gradients are summed over the ranks after backward (each rank's loss is its part
of the global batch over the global batch's count), and rank 0 alone writes checkpoints."""
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from ..evolution import TopologyEngine
from ..topology import sparse_layers
from .checkpoint import save_checkpoint
from .distributed import is_main, rank_rng_states, sum_gradients
from .tracking import Tracker


@dataclass
class StepClock:
    """Where a step-based run is and the wall time it took, saved flat in its checkpoint. Checkpoints written
    before a field existed lack it; it then starts at its default."""
    step: int = 0
    best: float = math.inf  # best validation loss among evaluations at the final density
    seconds: float = 0.0  # wall time of training, validation and topology updates included
    valid_seconds: float = 0.0
    update_seconds: float = 0.0  # topology updates (engine.step)
    fastest: float = math.inf  # seconds per optimizer step of the fastest evaluation interval, no validation/update

    @classmethod
    def from_checkpoint(cls, checkpoint: dict | None) -> "StepClock":
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: checkpoint[name] for name in names if name in (checkpoint or {})})

    def summary(self) -> dict:
        """Timing fields of a run's summary: ``update_overhead`` is the topology updates' time over the optimizer
        steps' time (validation excluded from both)."""
        steps_time = self.seconds - self.valid_seconds - self.update_seconds
        return {"train_seconds": self.seconds, "seconds_per_step": None if self.fastest == math.inf else self.fastest,
                "update_seconds": self.update_seconds, "update_overhead": self.update_seconds / max(steps_time, 1e-9)}


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, engine: TopologyEngine, tracker: Tracker,
                run_dir: Path, clock: StepClock, *, train_steps: int, eval_every: int,
                batch_loss: Callable[[], torch.Tensor], learning_rate: Callable[[int], float],
                validation_loss: Callable[[], float], data_state: Callable[[], dict], config: dict,
                quiet: bool) -> StepClock:
    """Train from ``clock.step`` to ``train_steps``; ``clock`` is updated in place and returned.

    ``batch_loss()`` draws the next global batch and returns the scalar loss of this rank's part (summed over
    the ranks: the batch's loss); ``learning_rate(step)`` is the rate of
    1-based step ``step``; ``validation_loss()`` is the mean validation loss; ``data_state()`` returns the
    recipe's checkpoint fields that put its data stream back where it is (``"rng"`` and any position), written
    beside model, optimizer, engine, ``config`` and the clock's fields into ``run_dir/checkpoint.pt``."""
    quiet = quiet or not is_main()
    progress = tqdm(total=train_steps, initial=clock.step, disable=quiet or None, desc="steps")
    started, loss_sum, loss_count, updating = time.perf_counter(), 0.0, 0, 0.0
    while clock.step < train_steps:
        loss = batch_loss()
        loss.backward()
        global_loss, = sum_gradients(model.parameters(), loss.item())  # the batch's loss, with the gradients
        clock.step += 1
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(clock.step)
        optimizer.step()
        loss_sum, loss_count = loss_sum + global_loss, loss_count + 1
        progress.update()
        evaluating = clock.step % eval_every == 0 or clock.step == train_steps
        if evaluating:  # before this step's topology update, as the authors' trainer
            valid_started = time.perf_counter()
            valid_loss = validation_loss()
            validating = time.perf_counter() - valid_started
            record = {"step": clock.step, "train_loss": loss_sum / loss_count, "valid_loss": valid_loss,
                      "valid_ppl": math.exp(min(valid_loss, 50)), "links": sum(l.nnz for l in sparse_layers(model)),
                      "lr": learning_rate(clock.step)}
            if engine.at_final_density(clock.step) and valid_loss < clock.best:  # select at the final density
                clock.best = valid_loss
                if is_main():
                    save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
        update = engine.step(clock.step)
        updating += update["seconds"] if update else 0.0
        optimizer.zero_grad(set_to_none=True)
        if evaluating:
            interval = time.perf_counter() - started
            clock.seconds += interval
            clock.valid_seconds += validating
            clock.update_seconds += updating
            clock.fastest = min(clock.fastest, (interval - validating - updating) / loss_count)
            tracker.log({**record, "seconds": clock.seconds, "update_seconds": clock.update_seconds,
                         **({"topology_hash": engine.topology_hash()} if engine.layers else {})}, step=clock.step)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "engine": engine.state_dict(),
                     **data_state(), **dataclasses.asdict(clock), "config": config, **rank_rng_states()}  # every rank
            if is_main():
                save_checkpoint(run_dir / "checkpoint.pt", state)
            if not quiet:
                tqdm.write(f"step {clock.step}: train loss {record['train_loss']:.3f}  valid loss {valid_loss:.3f} "
                           f"(ppl {record['valid_ppl']:.2f})", file=sys.stderr)
            started, loss_sum, loss_count, updating = time.perf_counter(), 0.0, 0, 0.0
    progress.close()
    return clock
