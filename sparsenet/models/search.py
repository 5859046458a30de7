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


@torch.no_grad()
def beam_search(model, src: torch.Tensor, bos: int, eos: int, beam: int = 2, max_length: int = 100,
                alpha: float = 1.0, ratio: float = 2.0) -> list[list[int]]:
    """Beam search per source row; hypotheses ranked by log-prob / ((5 + length) / 6)^alpha (GNMT/Wu's
    length penalty, as the paper's OpenNMT evaluation). Returns the best token list per row."""
    model.eval()
    results = []
    for row, limit in enumerate(length_limits(src, max_length, ratio, model.pad)):
        memory, memory_mask = model.encode(src[row:row + 1])
        memory, memory_mask = memory.expand(beam, -1, -1), memory_mask.expand(beam, -1, -1, -1)
        cache = model.new_cache()
        tokens = torch.full((beam, 1), bos, dtype=torch.long, device=src.device)
        scores = torch.full((beam,), float("-inf"), device=src.device)
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
            finished = [(float(scores[k]) / (((5 + length) / 6) ** alpha), tokens[k, 1:].tolist()) for k in range(beam)]
        results.append(max(finished, key=lambda item: item[0])[1])
    return results
