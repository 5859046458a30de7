"""The step loop's clock: what it reads back from a checkpoint (old ones lack the newer fields) and the timing
fields it puts in a summary. The loop itself runs in the recipes' tests (resume, best checkpoint, order)."""
import math

import pytest

from sparsenet.train.steps import StepClock


def test_clock_reads_its_fields_and_only_those_from_a_checkpoint():
    assert StepClock.from_checkpoint(None) == StepClock()
    before_the_timing_fields = {"step": 400, "best": 1.5, "seconds": 120.0, "epoch": 3, "position": 7, "rng": {}}
    clock = StepClock.from_checkpoint(before_the_timing_fields)
    assert (clock.step, clock.best, clock.seconds) == (400, 1.5, 120.0)
    assert (clock.valid_seconds, clock.update_seconds, clock.fastest) == (0.0, 0.0, math.inf)


def test_summary_overhead_is_update_time_over_optimizer_step_time():
    clock = StepClock(step=1000, seconds=130.0, valid_seconds=20.0, update_seconds=10.0, fastest=0.09)
    summary = clock.summary()
    assert summary["update_overhead"] == pytest.approx(10.0 / 100.0)  # 130 s = 100 steps + 20 valid + 10 updates
    assert (summary["train_seconds"], summary["seconds_per_step"], summary["update_seconds"]) == (130.0, 0.09, 10.0)
    assert StepClock().summary()["seconds_per_step"] is None  # no evaluation interval finished yet
