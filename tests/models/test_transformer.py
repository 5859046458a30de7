"""Transformer: cached decoding equals full decoding, decoders agree after real training, percolation pairs."""
import torch
from torch.nn import functional as F

from sparsenet.evolution import Schedule, SamePosition, TopologyEngine, make_method, percolate
from sparsenet.models import Transformer, beam_search, greedy_decode
from sparsenet.sparse import SparseLinear

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


def test_greedy_and_beam_agree_after_learning_to_copy():
    model = _model(density=0.6, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        src = torch.randint(3, 16, (32, 5), generator=g)
        tgt_in = torch.cat((torch.full((32, 1), BOS), src), 1)
        tgt_out = torch.cat((src, torch.full((32, 1), EOS)), 1)
        loss = F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    src = torch.randint(3, 16, (8, 5), generator=g)
    greedy = greedy_decode(model, src, BOS, EOS, max_length=10)
    beam = beam_search(model, src, BOS, EOS, beam=2, max_length=10)
    assert greedy == beam
    assert sum(out == row for out, row in zip(greedy, src.tolist())) >= 6  # it did learn to copy


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
