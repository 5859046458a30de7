"""Uniform sampling of distinct keys, and of absent links, without a dense mask."""
import pytest
import torch

from sparsenet.sparse import sample_absent_keys, sample_keys


@pytest.mark.parametrize("total,k", [(10, 0), (10, 1), (10, 10), (1000, 3), (1000, 990), (4 * 10**10, 1000)])
def test_sample_keys_distinct_sorted_in_range(total, k):
    keys = sample_keys(total, k, torch.Generator().manual_seed(0))
    assert keys.shape == (k,) and keys.dtype == torch.int64
    assert bool((keys[1:] > keys[:-1]).all()) and (k == 0 or (keys.min() >= 0 and keys.max() < total))


@pytest.mark.parametrize("k", [3, 15])  # 15 of 20 uses the complement path
def test_sample_keys_is_uniform(k):
    total, trials = 20, 4000
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(total)
    for _ in range(trials):
        counts[sample_keys(total, k, g)] += 1
    expected = trials * k / total
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # 99.9% quantile of chi-square with 19 degrees of freedom


def test_sample_keys_is_seeded():
    a = sample_keys(10**6, 100, torch.Generator().manual_seed(5))
    b = sample_keys(10**6, 100, torch.Generator().manual_seed(5))
    c = sample_keys(10**6, 100, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_absent_keys_uniform_over_absent_only():
    present = torch.tensor([0, 3, 4, 5, 9, 11])
    total, trials, k = 12, 3000, 2
    g = torch.Generator().manual_seed(2)
    counts = torch.zeros(total)
    for _ in range(trials):
        keys = sample_absent_keys(present, total, k, g)
        assert keys.unique().numel() == k
        counts[keys] += 1
    assert counts[present].sum() == 0
    absent = counts[[1, 2, 6, 7, 8, 10]]
    expected = trials * k / 6
    assert float(((absent - expected) ** 2 / expected).sum()) < 20.5  # 99.9% quantile, 5 dof


def test_sample_too_many_raises():
    with pytest.raises(ValueError, match="cannot sample 11 distinct keys from 10"):
        sample_keys(10, 11)


@pytest.mark.parametrize("present", [[3, 1], [2, 2], [1, 5, 3], [1, 2, 4, 4]])
def test_sample_absent_keys_refuses_present_keys_out_of_order_or_repeated(present):
    with pytest.raises(ValueError, match=r"^present must be sorted ascending and unique$"):
        sample_absent_keys(torch.tensor(present), 10, 2)


def test_sample_absent_keys_draws_from_its_generator():
    present = torch.tensor([1, 4, 6])
    draws = [sample_absent_keys(present, 1000, 20, torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    assert sample_absent_keys(torch.tensor([7]), 10, 9).tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 9]  # all but 7


def test_the_complement_path_draws_from_the_generator_too():
    """k > total / 2 samples the total - k dropped keys instead: from the same generator, so a seed still fixes
    the result (the global generator is moved between the calls)."""
    a = sample_keys(100, 90, torch.Generator().manual_seed(5))
    torch.rand(7)
    b = sample_keys(100, 90, torch.Generator().manual_seed(5))
    c = sample_keys(100, 90, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.numel() == 90 and a.unique().numel() == 90
