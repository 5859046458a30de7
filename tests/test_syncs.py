"""The sync counter sees each sync-forcing call once, and nothing else."""
import pytest
import torch

from tests.syncs import SyncCounter

x = torch.tensor([0.0, 2.0, 0.0, 3.0])
mask = x > 0

SYNCING = [
    ("item", lambda: x.sum().item()),
    ("float", lambda: float(x.sum())),
    ("bool", lambda: bool(x.sum() > 0)),
    ("nonzero", lambda: x.nonzero()),
    ("argwhere", lambda: torch.argwhere(x)),
    ("where of one argument", lambda: torch.where(mask)),
    ("boolean indexing", lambda: x[mask]),
    ("boolean index assignment", lambda: x.clone().__setitem__(mask, 1.0)),
    ("masked_select", lambda: x.masked_select(mask)),
    ("unique", lambda: torch.unique(x)),
    ("unique_consecutive", lambda: torch.unique_consecutive(x)),
    ("bincount", lambda: torch.bincount(torch.tensor([0, 1, 1]))),
    ("repeat_interleave without output_size", lambda: torch.repeat_interleave(x, torch.tensor([1, 0, 2, 1]))),
    ("equal", lambda: torch.equal(x, x)),
    ("tolist", lambda: x.tolist()),
    ("numpy", lambda: x.numpy()),
]

FREE = [
    ("arithmetic and reductions", lambda: (x * 2 + 1).sum()),
    ("integer indexing", lambda: x[torch.tensor([0, 3])]),
    ("where of three arguments", lambda: torch.where(mask, x, -x)),
    ("masked_fill", lambda: x.masked_fill(mask, 0.0)),
    ("topk and sort", lambda: (x.topk(2), x.sort())),
    ("repeat_interleave with output_size",
     lambda: torch.repeat_interleave(x, torch.tensor([1, 0, 2, 1]), output_size=4)),
    ("nonzero_static", lambda: torch.nonzero_static(x, size=2)),
]


@pytest.mark.parametrize("name, call", SYNCING, ids=[name for name, _ in SYNCING])
def test_each_syncing_call_counts_at_least_once(name, call):
    with SyncCounter() as syncs:
        call()
    assert syncs.count >= 1, name


@pytest.mark.parametrize("name, call", FREE, ids=[name for name, _ in FREE])
def test_sync_free_calls_count_zero(name, call):
    with SyncCounter() as syncs:
        call()
    assert syncs.count == 0, dict(syncs.by_op)


def test_the_counter_restores_tolist_and_counts_per_call():
    with SyncCounter() as syncs:
        for _ in range(5):
            x.sum().item()
    assert syncs.count == 5
    assert x.tolist() == [0.0, 2.0, 0.0, 3.0] and torch.Tensor.tolist.__name__ == "tolist"
