"""Each test of this folder starts from the same global random state, so the inputs it draws with
``torch.randn`` do not depend on which tests ran before it (or on a tool running the folder in another order:
an fp16 case whose input happens to hold a value in float16's subnormal range is then off by an absolute
rounding step that a relative tolerance does not cover, and fails on one order and not on another)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _same_random_state_for_every_test():
    torch.manual_seed(0)
