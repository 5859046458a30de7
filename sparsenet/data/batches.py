"""Training batch streams a run draws from, each resumable from a small state dict (what a checkpoint keeps):

- ``EpochBatches``: epoch after epoch of batches drawn by a function of a generator (a permutation cut into
  batches, token buckets in a shuffled order); its state is the generator's state at the epoch's start, the
  epoch and the position in it, so a resumed run redraws the same epoch and continues at the same batch;
- ``RandomWindows``: context windows of a token stream at random offsets, one draw per batch; its state is the
  generator's.
"""
from typing import Callable, Sequence

import torch

from .text import random_windows


class EpochBatches:
    """``draw(generator)`` gives one epoch's batches; ``next()`` returns them in order, drawing the next epoch
    (with the same generator) when one is used up."""

    def __init__(self, draw: Callable[[torch.Generator], Sequence], generator: torch.Generator):
        self.draw, self.generator = draw, generator
        self.epoch, self.position = 0, 0
        self._draw()

    def _draw(self) -> None:
        self.epoch_start = self.generator.get_state()
        self.batches = self.draw(self.generator)

    def next(self):
        if self.position == len(self.batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._draw()
        self.position += 1
        return self.batches[self.position - 1]

    def state(self) -> dict:
        """``{"rng": the generator's state at the epoch's start, "epoch", "position"}``."""
        return {"rng": self.epoch_start, "epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict) -> None:
        """Back to where ``state()`` was taken: the same epoch redrawn, the same batch next."""
        self.generator.set_state(state["rng"])
        self._draw()
        self.epoch, self.position = state["epoch"], state["position"]


class RandomWindows:
    """``(inputs, targets)`` of ``batch`` windows of ``context`` + 1 tokens of ``tokens`` (1-D int64) at random
    offsets from ``generator``, targets shifted by one: each ``(batch, context)``."""

    def __init__(self, tokens: torch.Tensor, batch: int, context: int, generator: torch.Generator):
        self.tokens, self.batch, self.context, self.generator = tokens, batch, context, generator

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        return random_windows(self.tokens, self.batch, self.context, self.generator)

    def state(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["rng"])
