"""Greedy and beam decoding make O(1) host syncs per decoding step, whatever the batch (``tests/syncs.py``): on a
GPU each one drains the queue, so a per-sentence read would cost a drain per sentence per step. Their results
are checked against the per-sentence reference in test_transformer.py."""
import pytest
import torch

from sparsenet.models import Transformer, beam_search, greedy_decode
from tests.devices import DEVICES
from tests.syncs import SyncCounter

BOS, EOS = 1, 2
MAX_LENGTH = 12  # every source below has 6 tokens: each row's limit is min(12, 2 * 6 + 10) = 12 steps


def _model(device):
    torch.manual_seed(0)
    model = Transformer(16, d_model=32, heads=4, layers=2, d_ff=64, dropout=0.0, attention_dropout=0.0, density=0.5,
                        generator=torch.Generator().manual_seed(0)).to(device)
    greedy_decode(model, torch.full((1, 6), 3, device=device), BOS, EOS, max_length=1)  # builds the CSR caches
    return model


DECODERS = {"greedy": lambda model, src: greedy_decode(model, src, BOS, EOS, MAX_LENGTH),
            "beam 4": lambda model, src: beam_search(model, src, BOS, EOS, beam=4, max_length=MAX_LENGTH)}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("device", DEVICES)
def test_decoding_makes_one_sync_per_step_whatever_the_batch(decoder, device):
    """One read per step (whether any row goes on) and three per call (the length limits, the outputs and their
    lengths): the same for 32 sentences as for 4, where a read per sentence would make eight times as many."""
    model = _model(device)
    counts = {}
    for rows in (4, 32):
        src = torch.randint(3, 16, (rows, 6), generator=torch.Generator().manual_seed(rows)).to(device)
        with SyncCounter() as syncs:
            outputs = DECODERS[decoder](model, src)
        assert len(outputs) == rows and all(len(output) <= MAX_LENGTH for output in outputs)
        assert syncs.count <= MAX_LENGTH + 3, syncs.by_op
        counts[rows] = syncs.count
    assert 0.5 * counts[4] <= counts[32] <= 1.5 * counts[4], counts
