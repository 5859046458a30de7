"""Selection: hard top-k with random ties, soft sampling without replacement (exact law), exact fallback."""
import torch

from sparsenet.evolution import StreamingTopK, keep_mask, priorities, select_absent
from tests.evolution.reference import inclusion_probabilities


def test_soft_keep_follows_successive_sampling_law():
    scores = torch.tensor([0.5, 1.0, 2.0, 4.0, 0.25])
    exponent, k, trials = 1.5, 2, 20000
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(5)
    for _ in range(trials):
        counts += keep_mask(scores, k, soft=True, generator=g, exponent=exponent).double().float()
    expected = torch.tensor(inclusion_probabilities((scores ** exponent).tolist(), k)) * trials
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # 99.9% quantile with 4 degrees of freedom


def test_hard_keep_takes_the_largest_and_breaks_ties_at_random():
    scores = torch.tensor([5.0, 1.0, 3.0, 3.0, 0.0, 4.0])
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        mask = keep_mask(scores, 3, soft=False, generator=g)
        assert mask.sum() == 3 and mask[0] and mask[5] and not mask[1] and not mask[4]
        seen.add((bool(mask[2]), bool(mask[3])))
    assert seen == {(True, False), (False, True)}


def test_priorities_keep_zero_scores_last():
    scores = torch.tensor([0.0, 1e-30, 0.0, 2.0])
    for soft in (False, True):
        p = priorities(scores, soft, torch.Generator().manual_seed(1))
        assert p[1] > p[0] and p[1] > p[2] and p[3] > p[0]


def test_streaming_topk_equals_one_shot():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(1000, generator=g, dtype=torch.float64)
    keys = torch.randperm(1000, generator=g)
    stream = StreamingTopK(37)
    for chunk in range(0, 1000, 64):
        stream.push(values[chunk:chunk + 64], keys[chunk:chunk + 64])
    expected = keys[torch.topk(values, 37).indices].sort().values
    assert torch.equal(stream.keys.sort().values, expected)


def test_select_absent_falls_back_to_uniform_zero_score_links():
    present = torch.tensor([0, 5, 6])
    total = 12
    positives = (torch.tensor([2, 9]), torch.tensor([1.0, 3.0]))
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(total)
    for _ in range(3000):
        chosen = select_absent([positives], 4, soft=True, present_keys=present, total=total, generator=g)
        assert chosen.numel() == 4 and bool((chosen[1:] > chosen[:-1]).all())
        assert {2, 9} <= set(chosen.tolist()) and not set(chosen.tolist()) & {0, 5, 6}
        counts[chosen] += 1
    zero_score = counts[[1, 3, 4, 7, 8, 10, 11]]
    expected = 3000 * 2 / 7
    assert float(((zero_score - expected) ** 2 / expected).sum()) < 22.5  # 99.9%, 6 dof


def test_soft_regrowth_only_positive_when_enough():
    g = torch.Generator().manual_seed(0)
    keys, scores = torch.arange(10), torch.tensor([0, 0, 1.0, 2.0, 0, 3.0, 4.0, 0, 0, 5.0])
    for _ in range(50):
        chosen = select_absent([(keys, scores)], 3, True, torch.tensor([20]), 30, g)
        assert set(chosen.tolist()) <= {2, 3, 5, 6, 9}


def test_keep_takes_zero_scores_in_uniformly_random_order_when_positives_run_out():
    """Keeping 2 of [2, 0, 0, 0, 0, 0]: the positive link always, then one of the five zeros uniformly."""
    scores = torch.tensor([2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    for soft in (False, True):
        g = torch.Generator().manual_seed(0)
        counts = torch.zeros(6)
        for _ in range(2000):
            mask = keep_mask(scores, 2, soft=soft, generator=g)
            assert mask.sum() == 2 and mask[0]
            counts += mask.float()
        expected = 2000 / 5
        assert float(((counts[1:] - expected) ** 2 / expected).sum()) < 18.5, (soft, counts)  # 99.9%, 4 dof
