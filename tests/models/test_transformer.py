"""Transformer: cached decoding equals full decoding, decoders agree after real training, percolation pairs."""
import functools
import math

import pytest
import torch
from torch.nn import functional as F

from sparsenet.evolution import Schedule, SamePosition, TopologyEngine, make_method, percolate
from sparsenet.models import Transformer, beam_search, greedy_decode
from sparsenet.sparse import SparseLinear
from tests.models.reference_search import beam_search_per_sentence

BOS, EOS = 1, 2


def _model(density=0.5, seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(d_model=32, heads=4, layers=2, d_ff=64, density=density, dropout=0.0, attention_dropout=0.0)
    return Transformer(16, **{**options, **kwargs}, generator=torch.Generator().manual_seed(seed))


def test_sparse_and_dense_layers_are_where_the_paper_puts_them():
    sparse, dense = _model(), _model(density=None)
    names = [n for n, m in sparse.named_modules() if isinstance(m, SparseLinear)]
    assert len(names) == 2 * (4 + 2) + 2 * (8 + 2)  # enc: QKVO + W1 W2; dec: self QKVO + cross QKVO + W1 W2
    assert not isinstance(sparse.generator, SparseLinear) and not any(isinstance(m, SparseLinear)
                                                                       for m in dense.modules())
    assert len(sparse.percolation_relations()) == 2 * 3 + 2 * 5 and dense.percolation_relations() == []


@pytest.mark.parametrize("tie", ["all", "source_target", "none"])
def test_dense_parameters_start_xavier_uniform_with_zero_padding_rows(tie):
    """Separate matrices (the authors' OpenNMT): every >= 2-D dense matrix Xavier-uniform. An embedding shared
    between languages (fairseq): N(0, 1/d); the other matrices Xavier."""
    model = Transformer(3000, d_model=64, heads=4, layers=2, d_ff=128, density=None, tie_embeddings=tie,
                        generator=torch.Generator().manual_seed(0))
    xavier = [model.encoder[0].ffn.w1.weight, model.decoder[1].cross_attention.q.weight]
    embeddings = [model.source_embedding.weight, model.target_embedding.weight, model.generator.weight]
    separate = {"all": [], "source_target": [model.generator.weight], "none": embeddings}[tie]
    for weight in xavier + separate:
        fan_out, fan_in = weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        rows = (weight[1:] if weight.shape[0] == 3000 and weight is not model.generator.weight else weight).detach()
        assert float(rows.abs().max()) <= bound
        assert abs(float(rows.std()) / (bound / math.sqrt(3.0)) - 1.0) < 0.2
    if tie != "none":
        assert model.target_embedding is model.source_embedding
        shared = model.source_embedding.weight[1:].detach()
        assert abs(float(shared.std()) * math.sqrt(64) - 1.0) < 0.05 and abs(float(shared.mean())) < 0.01
    assert not model.source_embedding.weight[0].any() and not model.target_embedding.weight[0].any()


def test_tied_embeddings_share_one_matrix_and_round_trip_the_state_dict():
    tied, untied, pair = _model(tie_embeddings="all"), _model(tie_embeddings="none"), _model()
    shared = tied.source_embedding.weight
    assert tied.target_embedding.weight is shared and tied.generator.weight is shared and tied.generator.bias is None
    assert untied.target_embedding.weight is not untied.source_embedding.weight
    assert untied.generator.weight is not untied.source_embedding.weight and untied.generator.bias is not None
    assert pair.target_embedding is pair.source_embedding and pair.generator.weight is not pair.source_embedding.weight
    n_tied = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in untied.parameters()) == n_tied + 2 * 16 * 32 + 16
    assert sum(p.numel() for p in pair.parameters()) == n_tied + 16 * 32 + 16
    with pytest.raises(ValueError, match="tie_embeddings"):
        _model(tie_embeddings="yes")
    copy = _model(tie_embeddings="all", seed=5)
    copy.load_state_dict(tied.state_dict())
    assert copy.generator.weight is copy.source_embedding.weight  # still one tensor after loading
    src, tgt = torch.randint(3, 16, (2, 5)), torch.randint(3, 16, (2, 4))
    tied.eval(), copy.eval()
    torch.testing.assert_close(copy(src, tgt), tied(src, tgt), rtol=0, atol=0)


def test_cached_decoding_equals_full_decoding():
    model = _model().eval()
    src = torch.randint(3, 16, (3, 7))
    src[0, 5:] = 0  # padding
    tgt = torch.randint(3, 16, (3, 6))
    tgt[:, 0] = BOS
    with torch.no_grad():
        full = F.log_softmax(model(src, tgt), -1)
        memory, memory_mask = model.encode(src)
        cache = model.new_cache()
        steps = [model.decode_step(tgt[:, t:t + 1], t, memory, memory_mask, cache) for t in range(tgt.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)


def _padded(lengths: list[int], generator) -> torch.Tensor:
    """``(len(lengths), max)`` rows of random tokens in [3, 16) of the given lengths, padded with 0."""
    src = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        src[row, :n] = torch.randint(3, 16, (n,), generator=generator)
    return src


@functools.lru_cache(maxsize=1)
def _copy_model(steps: int = 400):
    """A tiny model trained to copy sources of 1-7 tokens: its beams end at EOS at varied lengths. Trained
    once per session (its users only decode); 400 steps copy reliably at any thread count (150 did not at
    one thread)."""
    model = _model(density=0.6, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        src = _padded(torch.randint(1, 8, (32,), generator=g).tolist(), g)
        tgt_in = torch.cat((torch.full((32, 1), BOS), src), 1)
        tgt_out = torch.cat((src, torch.zeros(32, 1, dtype=torch.long)), 1)
        tgt_out[torch.arange(32), (src != 0).sum(1)] = EOS
        loss = F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("beam, alpha", [(2, 1.0), (4, 0.6), (5, 0.0)])
def test_batched_beam_search_equals_the_per_sentence_beam(beam, alpha):
    model = _copy_model()
    g = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, 8, (50,), generator=g).tolist()
    src = _padded(lengths, g)
    batched = beam_search(model, src, BOS, EOS, beam=beam, max_length=6, alpha=alpha)
    reference = beam_search_per_sentence(model, src, BOS, EOS, beam=beam, max_length=6, alpha=alpha)
    assert batched == reference
    assert len({len(out) for out in batched}) > 2  # rows finish at different steps: compaction was exercised
    assert any(len(out) == 6 for out in batched)  # and some hit the length limit


def test_batched_greedy_equals_beam_of_one_per_sentence_with_padding_and_length_limits():
    model = _model(seed=2)
    g = torch.Generator().manual_seed(1)
    lengths = [2, 7, 4, 1, 5, 3]
    src = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        src[row, :n] = torch.randint(3, 16, (n,), generator=g)
    greedy = greedy_decode(model, src, BOS, EOS, max_length=12)
    assert greedy == beam_search(model, src, BOS, EOS, beam=1, max_length=12)
    assert all(len(out) <= min(12, 2 * n + 10) for out, n in zip(greedy, lengths))
    assert any(len(out) == min(12, 2 * n + 10) for out, n in zip(greedy, lengths))  # an untrained model hits it


def test_percolation_keeps_query_and_key_dimensions_together():
    model = _model(density=0.15, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    engine = TopologyEngine(model, optimizer, make_method("chts", regrowth="ch2_l3n_soft"),
                            Schedule(update_interval=1, total_steps=10, zeta=0.6))
    src, tgt = torch.randint(3, 16, (4, 6)), torch.randint(3, 16, (4, 5))
    F.cross_entropy(model(src, tgt).flatten(0, 1), tgt.flatten()).backward()
    optimizer.step()
    masks = percolate(engine._keep_masks(1, {l: l.nnz for l in engine.layers}), engine.relations)
    pairs = [r for r in engine.relations if isinstance(r, SamePosition)]
    assert len(pairs) == 6
    emptied = 0
    for pair in pairs:
        q_alive = torch.bincount(pair.first.indices[0][masks[pair.first]], minlength=32) > 0
        k_alive = torch.bincount(pair.second.indices[0][masks[pair.second]], minlength=32) > 0
        assert torch.equal(q_alive, k_alive)
        emptied += int((~q_alive).sum())
    assert emptied > 0  # the rule had work to do
    assert engine.step(1)["removed"] > 0


def _sequence_log_probs(model, src_row: torch.Tensor, sequences: list[list[int]]) -> torch.Tensor:
    """log P(sequence | src) of each EOS-ended sequence, by full (uncached) teacher-forced decoding of all
    of them in one batch (causal attention: padding after a sequence's end does not change its prefix)."""
    length = max(len(t) for t in sequences)
    tgt_in = torch.tensor([[BOS] + t[:-1] + [3] * (length - len(t)) for t in sequences])
    with torch.no_grad():
        log_probs = F.log_softmax(model(src_row[None].expand(len(sequences), -1), tgt_in), -1)
    picked = [log_probs[i, torch.arange(len(t)), torch.tensor(t)].sum() for i, t in enumerate(sequences)]
    return torch.stack(picked)


def test_beam_search_as_wide_as_all_hypotheses_finds_the_exhaustive_best():
    """Vocabulary of 6, at most 4 output tokens: every EOS-ended hypothesis (up to 3 content tokens of 5,
    then EOS) is scored from scratch by uncached decoding; a beam wide enough to keep them all (128) must
    return the best length-penalised one, for two length penalties. The model (random, weights x3, so that
    what was already emitted matters) was chosen so that dropping the cache's reorder by beam origin
    changes a winner."""
    from itertools import product
    torch.manual_seed(2)
    model = Transformer(6, d_model=16, heads=2, layers=2, d_ff=32, density=None, dropout=0.0, attention_dropout=0.0,
                        generator=torch.Generator().manual_seed(2)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(3.0)
        model.generator.bias.zero_()
        model.generator.bias[EOS] = 0.5
    src = torch.randint(3, 6, (8, 3), generator=torch.Generator().manual_seed(5))
    bodies = [list(body) for k in range(4) for body in product([t for t in range(6) if t != EOS], repeat=k)]
    lengths = torch.tensor([len(body) + 1 for body in bodies], dtype=torch.float64)
    totals = [_sequence_log_probs(model, row, [body + [EOS] for body in bodies]).double() for row in src]
    for alpha in (0.0, 1.0):
        found = beam_search(model, src, BOS, EOS, beam=128, max_length=4, alpha=alpha)
        best = [bodies[int((total / ((5 + lengths) / 6) ** alpha).argmax())] for total in totals]
        assert found == best
        assert len({len(b) for b in best}) > 1  # winners differ in length: the penalty and EOS handling matter


def test_beam_retires_finished_hypotheses_and_keeps_the_length_limit():
    model = _copy_model()
    g = torch.Generator().manual_seed(6)
    src = _padded([3, 5, 7, 2], g)
    for beam in (2, 3):
        out = beam_search(model, src, BOS, EOS, beam=beam, max_length=4)
        assert all(len(o) <= 4 for o in out) and len(out[2]) == 4  # 7 tokens to copy: stopped by the limit
        assert out[0] == src[0, :3].tolist()  # copied and retired at EOS, not continued
    never_ends = _model(seed=3)
    with torch.no_grad():
        never_ends.generator.bias[EOS] = -100.0
    lengths = [1, 4, 2]
    src = _padded(lengths, g)
    expected = [2 * n + 10 for n in lengths]  # fairseq's max_len_a/b rule binds below max_length
    assert [len(o) for o in beam_search(never_ends, src, BOS, EOS, beam=2, max_length=100)] == expected
    assert [len(o) for o in greedy_decode(never_ends, src, BOS, EOS, max_length=100)] == expected
    assert [len(o) for o in greedy_decode(never_ends, src, BOS, EOS, max_length=13)] == [12, 13, 13]


def test_the_sparse_transformer_saves_no_more_activations_than_the_dense_one(monkeypatch):
    import contextlib

    from sparsenet.models import transformer
    src, tgt = torch.randint(4, 50, (3, 7)), torch.randint(4, 50, (3, 6))

    from benchmarks.saved_activations import saved_bytes

    def saved(density):
        model = Transformer(50, 32, 4, 2, 64, 0.1, 0.1, density, 20, torch.Generator().manual_seed(0), "source_target")
        return saved_bytes(lambda: model(src, tgt), model.parameters())

    dense = saved(None)
    assert saved(0.5) <= dense  # Q/K/V and the memory's K/V share their feature-major copies
    monkeypatch.setattr(transformer, "shared_inputs", contextlib.nullcontext)
    assert saved(0.5) > dense  # without sharing, each projection saves its own copy
