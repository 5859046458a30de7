"""Greedy and beam-search decoding with the Transformer's key/value cache.

A hypothesis stops at EOS or after ``min(max_length, ratio · source length + 10)`` tokens (fairseq's
``max_len_a/b`` rule), so an untrained model does not run to ``max_length`` on every sentence.
"""
import torch

EXTRA_TOKENS = 10


def length_limits(src: torch.Tensor, max_length: int, ratio: float, pad: int = 0) -> list[int]:
    """Per source row ``(B, S)``: the longest output allowed, ``min(max_length, ratio·len + 10)``."""
    lengths = (src != pad).sum(1).tolist()
    return [min(max_length, int(ratio * n) + EXTRA_TOKENS) for n in lengths]


@torch.no_grad()
def greedy_decode(model, src: torch.Tensor, bos: int, eos: int, max_length: int = 100,
                  ratio: float = 2.0) -> list[list[int]]:
    """Most likely token at every step; returns one token list per source row (without BOS/EOS)."""
    model.eval()
    limits = length_limits(src, max_length, ratio, model.pad)
    memory, memory_mask = model.encode(src)
    cache = model.new_cache()
    token = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
    outputs = [[] for _ in range(src.shape[0])]
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for position in range(max(limits)):
        token = model.decode_step(token, position, memory, memory_mask, cache).argmax(-1, keepdim=True)
        for row in (~done).nonzero().squeeze(1).tolist():
            if int(token[row]) != eos:
                outputs[row].append(int(token[row]))
            if len(outputs[row]) == limits[row]:
                done[row] = True
        done |= token.squeeze(1) == eos
        if bool(done.all()):
            break
    return outputs


def _reorder(cache: list, order: torch.Tensor) -> None:
    for layer in cache:
        for part in layer.values():
            for key in part:
                part[key] = part[key].index_select(0, order)


def _penalised(log_prob: float, length: int, alpha: float) -> float:
    """GNMT/Wu's length penalty: ``log_prob / ((5 + length) / 6) ** alpha``."""
    return log_prob / (((5 + length) / 6) ** alpha)


@torch.no_grad()
def beam_search(model, src: torch.Tensor, bos: int, eos: int, beam: int = 2, max_length: int = 100,
                alpha: float = 1.0, ratio: float = 2.0) -> list[list[int]]:
    """Beam search over all rows of ``src (B, S)`` at once; returns the best token list per row (without
    BOS/EOS).

    Every row keeps ``beam`` live hypotheses in one ``(rows · beam, t)`` tensor. At each step the ``beam``
    best continuations of a row are chosen among all its hypotheses' extensions; one that ends in EOS is
    set aside as finished (as fairseq does), scored by log-prob / ((5 + length) / 6)^alpha (GNMT/Wu's
    length penalty, as the paper's OpenNMT evaluation; length counts the EOS), and its slot is refilled
    from the others at the next step. A row is done when it has ``beam`` finished hypotheses, no live one,
    or reaches its length limit (then, if none finished, its live hypotheses compete); done rows leave the
    batch (their caches with them).
    """
    model.eval()
    limits = length_limits(src, max_length, ratio, model.pad)
    rows = src.shape[0]
    if max(limits, default=0) <= 0:
        return [[] for _ in range(rows)]
    memory, memory_mask = model.encode(src)
    memory, memory_mask = memory.repeat_interleave(beam, 0), memory_mask.repeat_interleave(beam, 0)
    cache = model.new_cache()
    tokens = torch.full((rows * beam, 1), bos, dtype=torch.long, device=src.device)
    scores = torch.full((rows, beam), float("-inf"), device=src.device)
    scores[:, 0] = 0.0
    alive = list(range(rows))  # original row of each row still decoding
    finished = [[] for _ in range(rows)]
    for position in range(max(limits, default=0)):
        n = len(alive)
        log_probs = model.decode_step(tokens[:, -1:], position, memory, memory_mask, cache)
        vocab = log_probs.shape[1]
        total = (scores.unsqueeze(2) + log_probs.view(n, beam, vocab)).view(n, beam * vocab)
        best, index = total.topk(beam, dim=1)
        origin = (index // vocab + torch.arange(n, device=src.device).unsqueeze(1) * beam).flatten()
        token = index % vocab
        tokens = torch.cat((tokens[origin], token.view(-1, 1)), 1)
        _reorder(cache, origin)
        ended = token == eos
        scores = best.masked_fill(ended, float("-inf"))
        keep = []
        for i, row in enumerate(alive):
            for k in ended[i].nonzero().squeeze(1).tolist():
                finished[row].append((_penalised(float(best[i, k]), position + 1, alpha),
                                      tokens[i * beam + k, 1:-1].tolist()))
            if len(finished[row]) >= beam or bool(torch.isinf(scores[i]).all()):
                continue
            if position + 1 == limits[row]:
                if not finished[row]:
                    finished[row] = [(_penalised(float(scores[i, k]), position + 1, alpha),
                                      tokens[i * beam + k, 1:].tolist()) for k in range(beam)]
                continue
            keep.append(i)
        if not keep:
            break
        if len(keep) < n:
            rows_kept = torch.tensor(keep, device=src.device)
            slots = (rows_kept.unsqueeze(1) * beam + torch.arange(beam, device=src.device)).flatten()
            tokens, scores = tokens[slots], scores[rows_kept]
            memory, memory_mask = memory[slots], memory_mask[slots]
            _reorder(cache, slots)
            alive = [alive[i] for i in keep]
    return [max(hypotheses, key=lambda item: item[0])[1] for hypotheses in finished]
