"""The loop's clock (what a checkpoint keeps of it; the timing fields of a summary) and the loop's promise that a
training step reads nothing back from the device: the syncs between two evaluations do not grow with the steps.
The loop itself runs in the recipes' tests (resume, best checkpoint, order of evaluation and update)."""
import math

import pytest
import torch

from sparsenet.train import classify, language, loop
from sparsenet.train.loop import Clock
from tests.syncs import SyncCounter


def test_clock_reads_its_fields_and_only_those_from_a_checkpoint():
    assert Clock.from_checkpoint(None, {"valid_loss": math.inf}) == Clock(best={"valid_loss": math.inf})
    saved = {"clock": {"step": 400, "best": {"valid_loss": 1.5}, "seconds": 120.0, "interval_weight": 7,
                       "from_a_later_version": 1}}
    clock = Clock.from_checkpoint(saved, {})
    assert (clock.step, clock.best, clock.seconds, clock.interval_weight) == (400, {"valid_loss": 1.5}, 120.0, 7)
    assert (clock.valid_seconds, clock.update_seconds, clock.fastest) == (0.0, 0.0, math.inf)


def test_summary_overhead_is_update_time_over_optimizer_step_time():
    clock = Clock(step=1000, seconds=130.0, valid_seconds=20.0, update_seconds=10.0, fastest=0.09)
    summary = clock.summary()
    assert summary["update_overhead"] == pytest.approx(10.0 / 100.0)  # 130 s = 100 steps + 20 valid + 10 updates
    assert (summary["train_seconds"], summary["seconds_per_step"], summary["update_seconds"]) == (130.0, 0.09, 10.0)
    assert Clock().summary()["seconds_per_step"] is None  # no evaluation interval finished yet


class DeviceSyncs(SyncCounter):
    """``SyncCounter`` without the reads of ``steps``, the optimizer's step counters: torch keeps them on the CPU
    whatever the parameters' device (Adam without ``capturable``), so reading them never waits for a GPU."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and any(args[0] is step for step in self.steps):
            return func(*args, **(kwargs or {}))
        return super().__torch_dispatch__(func, types, args, kwargs)


def _syncs_between_evaluations(monkeypatch, recipe, config, eval_every: int) -> tuple:
    """Syncs of a run's second evaluation interval (``eval_every`` steps, no topology update in it), counted
    from just after the first evaluation's checkpoint to just before the second evaluation."""
    counter, real_save = DeviceSyncs(), loop._save
    built_class = {classify: classify.Classify, language: language.Language}[recipe]
    real_evaluate = built_class.evaluate
    evaluations = []

    def save(built, *args, **kwargs):
        real_save(built, *args, **kwargs)
        if len(evaluations) == 1:
            counter.steps = [state["step"] for state in built.optimizer.state.values() if "step" in state]
            counter.__enter__()

    def evaluate(self, step):
        evaluations.append(step)
        if len(evaluations) == 2:
            counter.__exit__(None, None, None)
        return real_evaluate(self, step)

    monkeypatch.setattr(loop, "_save", save)
    monkeypatch.setattr(built_class, "evaluate", evaluate)
    recipe.train(config)
    assert evaluations[:2] == [eval_every, 2 * eval_every]
    return counter.count, counter.by_op


@pytest.mark.parametrize("steps", [3, 12])
def test_a_language_model_step_makes_no_host_sync(tmp_path, monkeypatch, steps):
    from tests.train.test_language import _options
    config = language.build_config(**_options(tmp_path, train_steps=2 * steps, eval_every=steps,
                                              update_interval=1000, method="set"))
    count, by_op = _syncs_between_evaluations(monkeypatch, language, config, steps)
    assert count == 0, by_op


@pytest.mark.parametrize("batch_size", [64, 16])
def test_an_mlp_epoch_makes_no_host_sync_whatever_its_steps(tmp_path, monkeypatch, batch_size):
    """The digits MLP at batch 64 (epochs of 21 steps) and batch 16 (81 steps): no sync inside an epoch (the
    topology update, which may sync per layer, is due every 10 epochs only)."""
    config = classify.build_config(dataset="digits", hidden=(32, 32), method="set", update_interval=10,
                                   batch_size=batch_size, epochs=2, out_dir=str(tmp_path), wandb="off", quiet=True)
    steps = -(-1293 // batch_size)  # the 90% of the 1,437 digits that train
    count, by_op = _syncs_between_evaluations(monkeypatch, classify, config, steps)
    assert count == 0, by_op
