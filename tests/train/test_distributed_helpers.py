"""The data-parallel helpers on 2 gloo ranks (torch.multiprocessing): gradients and logged numbers summed in
one collective, a gradient present on one rank only, none anywhere; each rank's part of a batch."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sparsenet.train import distributed
from tests.evolution.test_distributed import _free_port


def _worker(rank: int, port: int, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    both, one, never = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    both.grad = torch.full((3,), float(rank + 1))
    if rank == 1:
        one.grad = torch.tensor([5.0, 6.0, 7.0])  # e.g. rank 0's part of the batch was empty
    numbers = torch.tensor([1.5, rank + 1], dtype=torch.float64)  # the logged loss and a count
    numbers = distributed.sum_gradients([both, one, never], numbers)
    results[rank] = {"numbers": numbers.tolist(), "dtype": numbers.dtype, "both": both.grad.tolist(), "one": one.grad.tolist(),
                     "never": never.grad, "tensor": distributed.shard(torch.arange(5)).tolist(),
                     "list": distributed.shard(list("abcde")), "sums": distributed.all_sum(0.25, rank)}
    dist.destroy_process_group()


def test_gradients_and_numbers_are_summed_and_batches_shared():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
    for rank in (0, 1):
        r = results[rank]
        assert r["numbers"] == [3.0, 3.0] and r["dtype"] == torch.float64 and r["sums"] == [0.5, 1.0]
        assert r["both"] == [3.0, 3.0, 3.0] and r["one"] == [5.0, 6.0, 7.0] and r["never"] is None
    assert results[0]["tensor"] + results[1]["tensor"] == [0, 1, 2, 3, 4]
    assert results[0]["tensor"] == [0, 1, 2] and results[0]["list"] == ["a", "b", "c"]
    assert results[1]["list"] == ["d", "e"]


def _turn_worker(rank: int, port: int, results, log):
    import os
    import time
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

    def load():
        log.append(("start", rank))
        time.sleep(0.2 if rank == 0 else 0.0)  # rank 0 prepares slowly; rank 1 must still wait for it
        log.append(("end", rank))
        return rank * 10

    results[rank] = distributed.load_in_turn(load)
    dist.destroy_process_group()


def test_rank_zero_prepares_the_data_before_the_others_read_it():
    manager = mp.Manager()
    results, log = manager.dict(), manager.list()
    mp.spawn(_turn_worker, args=(_free_port(), results, log), nprocs=2, join=True)
    assert list(log) == [("start", 0), ("end", 0), ("start", 1), ("end", 1)]
    assert dict(results) == {0: 0, 1: 10}


def test_one_process_leaves_everything_as_it_is():
    parameter = torch.nn.Parameter(torch.zeros(2))
    parameter.grad = torch.ones(2)
    numbers = torch.tensor([0.1, 3.0], dtype=torch.float64)
    assert distributed.sum_gradients([parameter], numbers) is numbers
    assert parameter.grad.tolist() == [1.0, 1.0] and distributed.shard([1, 2]) == [1, 2]
    assert distributed.world_size() == 1 and distributed.is_main()


def test_a_torchrun_worker_watches_its_launcher_and_a_single_process_does_not(monkeypatch):
    """``setup`` under torchrun (WORLD_SIZE > 1) starts the parent watch before joining the group, so a worker
    whose launcher is killed stops; a one-process run (which may be meant to outlive its shell) never does."""
    calls = []
    monkeypatch.setattr(distributed, "exit_with_parent", lambda: calls.append("watch"))
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: calls.append("join"))
    monkeypatch.setattr(distributed, "active", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.setup() is False and calls == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.setup() is True and calls == ["watch", "join"]


def test_a_finished_run_waits_for_its_peers_before_leaving_and_a_stopped_one_does_not(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed, "active", lambda: "destroy" not in calls)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    distributed.shutdown(wait_for_peers=True)
    distributed.shutdown()  # the `finally` after it: the group is gone, nothing more
    assert calls == ["barrier", "destroy"]
    calls.clear()
    distributed.shutdown()
    assert calls == ["destroy"]
