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
    """Most likely token at every step; returns one token list per source row (without BOS/EOS).

    The outputs grow on the device, ``(rows, steps)`` tokens and a length per row; the host reads one flag
    per step (whether every row is done) and the outputs once at the end."""
    model.eval()
    limits = length_limits(src, max_length, ratio, model.pad)
    rows, steps, device = src.shape[0], max(limits, default=0), src.device
    memory, memory_mask = model.encode(src)
    cache = model.new_cache()
    token = torch.full((rows, 1), bos, dtype=torch.long, device=device)
    limit = torch.tensor(limits, dtype=torch.long, device=device)
    outputs = torch.zeros(rows, steps + 1, dtype=torch.long, device=device)  # column `steps`: where no-ops write
    lengths = torch.zeros(rows, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    every_row = torch.arange(rows, device=device)
    for position in range(steps):
        token = model.decode_step(token, position, memory, memory_mask, cache).argmax(-1, keepdim=True)
        step_token = token.squeeze(1)
        append = ~done & (step_token != eos)
        outputs[every_row, torch.where(append, lengths, steps)] = step_token
        lengths += append
        done |= (lengths == limit) | (step_token == eos)
        if bool(done.all()):
            break
    return [row[:n] for row, n in zip(outputs.tolist(), lengths.tolist())]


def _reorder(cache: list, order: torch.Tensor) -> None:
    for layer in cache:
        for part in layer.values():
            for key in part:
                part[key] = part[key].index_select(0, order)


def _penalised(log_prob: torch.Tensor, length: int, alpha: float) -> torch.Tensor:
    """GNMT/Wu's length penalty: ``log_prob / ((5 + length) / 6) ** alpha``, elementwise (float64 in, as the
    host's floats)."""
    return log_prob / (((5 + length) / 6) ** alpha)


class _BestHypotheses:
    """The best hypothesis set aside for each source row so far, on the device: its ``score (rows,)`` float64,
    ``tokens (rows, steps)`` and ``length (rows,)``. Hypotheses are offered in the order a list of them would be
    appended to, and one replaces the best only when it scores higher (the first of equals wins, as ``max``)."""

    def __init__(self, rows: int, steps: int, device):
        self.score = torch.full((rows,), float("-inf"), dtype=torch.float64, device=device)
        self.found = torch.zeros(rows, dtype=torch.bool, device=device)
        self.tokens = torch.zeros(rows, steps, dtype=torch.long, device=device)
        self.length = torch.zeros(rows, dtype=torch.long, device=device)

    def offer(self, rows: torch.Tensor, offered: torch.Tensor, scores: torch.Tensor, sequences: torch.Tensor) -> None:
        """For the source rows ``rows (n,)``: the hypotheses where ``offered (n, beam)`` is True, with ``scores (n,
        beam)`` float64 and token ``sequences (n, beam, length)``, in beam order."""
        n, length = rows.numel(), sequences.shape[2]
        top = scores.masked_fill(~offered, float("-inf")).max(1).values
        first = (offered & (scores == top.unsqueeze(1))).to(torch.uint8).argmax(1)  # the first best offered
        current = self.score[rows]
        take = offered.any(1) & (~self.found[rows] | (top > current))
        self.score[rows] = torch.where(take, top, current)
        self.found[rows] |= take
        sequence = sequences[torch.arange(n, device=rows.device), first]
        self.tokens[rows, :length] = torch.where(take.unsqueeze(1), sequence, self.tokens[rows, :length])
        self.length[rows] = torch.where(take, length, self.length[rows])

    def lists(self) -> list[list[int]]:
        return [tokens[:n] for tokens, n in zip(self.tokens.tolist(), self.length.tolist())]


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
    batch (their caches with them). The bookkeeping stays on the device: the host reads which rows go on
    once per step, and the results once at the end.
    """
    model.eval()
    limits = length_limits(src, max_length, ratio, model.pad)
    rows, steps, device = src.shape[0], max(limits, default=0), src.device
    if steps <= 0:
        return [[] for _ in range(rows)]
    memory, memory_mask = model.encode(src)
    memory, memory_mask = memory.repeat_interleave(beam, 0), memory_mask.repeat_interleave(beam, 0)
    cache = model.new_cache()
    tokens = torch.full((rows * beam, 1), bos, dtype=torch.long, device=device)
    scores = torch.full((rows, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0
    alive = torch.arange(rows, device=device)  # original row of each row still decoding
    limit = torch.tensor(limits, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.long, device=device)  # hypotheses set aside per row
    chosen = _BestHypotheses(rows, steps, device)
    for position in range(steps):
        n = alive.numel()
        log_probs = model.decode_step(tokens[:, -1:], position, memory, memory_mask, cache)
        vocab = log_probs.shape[1]
        total = (scores.unsqueeze(2) + log_probs.view(n, beam, vocab)).view(n, beam * vocab)
        best, index = total.topk(beam, dim=1)
        origin = (index // vocab + torch.arange(n, device=device).unsqueeze(1) * beam).flatten()
        token = index % vocab
        tokens = torch.cat((tokens[origin], token.view(-1, 1)), 1)
        _reorder(cache, origin)
        ended = token == eos
        scores = best.masked_fill(ended, float("-inf"))
        sequences = tokens.view(n, beam, -1)
        chosen.offer(alive, ended, _penalised(best.double(), position + 1, alpha), sequences[:, :, 1:-1])  # no EOS
        finished[alive] += ended.sum(1)
        retired = (finished[alive] >= beam) | torch.isinf(scores).all(1)
        at_limit = ~retired & (limit[alive] == position + 1)
        unfinished = (at_limit & (finished[alive] == 0)).unsqueeze(1).expand(n, beam)  # live ones compete
        chosen.offer(alive, unfinished, _penalised(scores.double(), position + 1, alpha), sequences[:, :, 1:])
        keep = (~(retired | at_limit)).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        if keep.numel() < n:
            slots = (keep.unsqueeze(1) * beam + torch.arange(beam, device=device)).flatten()
            tokens, scores = tokens[slots], scores[keep]
            memory, memory_mask = memory[slots], memory_mask[slots]
            _reorder(cache, slots)
            alive = alive[keep]
    return chosen.lists()
