"""Reference decoders for tests: the per-sentence beam search the batched one must reproduce exactly."""
import torch

from sparsenet.models.search import _reorder, length_limits


@torch.no_grad()
def beam_search_per_sentence(model, src, bos, eos, beam=2, max_length=100, alpha=1.0, ratio=2.0):
    """One source row at a time: the ``beam`` best extensions among all hypotheses' continuations; an
    EOS-ended one is set aside (score / ((5 + length) / 6)^alpha) and its slot refilled at the next step;
    stop at ``beam`` finished, no live hypothesis, or the row's length limit."""
    model.eval()
    results = []
    for row, limit in enumerate(length_limits(src, max_length, ratio, model.pad)):
        memory, memory_mask = model.encode(src[row:row + 1])
        memory, memory_mask = memory.expand(beam, -1, -1), memory_mask.expand(beam, -1, -1, -1)
        cache = model.new_cache()
        tokens = torch.full((beam, 1), bos, dtype=torch.long)
        scores = torch.full((beam,), float("-inf"))
        scores[0] = 0.0
        finished = []
        for position in range(limit):
            log_probs = model.decode_step(tokens[:, -1:], position, memory, memory_mask, cache)
            total = (scores.unsqueeze(1) + log_probs).flatten()
            best, index = total.topk(beam)
            origin, token = index // log_probs.shape[1], index % log_probs.shape[1]
            tokens = torch.cat((tokens[origin], token.unsqueeze(1)), 1)
            _reorder(cache, origin)
            scores = best.clone()
            for k in range(beam):
                if int(token[k]) == eos:
                    length = tokens.shape[1] - 1
                    finished.append((float(best[k]) / (((5 + length) / 6) ** alpha), tokens[k, 1:-1].tolist()))
                    scores[k] = float("-inf")
            if len(finished) >= beam or bool(torch.isinf(scores).all()):
                break
        if not finished:
            length = tokens.shape[1] - 1
            finished = [(float(scores[k]) / (((5 + length) / 6) ** alpha), tokens[k, 1:].tolist())
                        for k in range(beam)]
        results.append(max(finished, key=lambda item: item[0])[1])
    return results
