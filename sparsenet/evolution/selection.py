"""Choosing k items by score: hard top-k or soft sampling without replacement, streamed over blocks.

Both are a top-k over a *priority*. Hard: the score itself, ties broken at random. Soft, P ∝ score^T
without replacement: Efraimidis–Spirakis keys, the k largest ``T·log(score) − log(E)``, E ~ Exp(1)
(exactly successive sampling; no category limit, unlike ``torch.multinomial``'s 2^24). Zero scores get
priorities below every positive one, in random order, so they are taken only when the positives run out.
"""
import torch

from ..sparse import sample_absent_keys
from ..sparse.sample import draw_device

_FLOOR = -1e300


def _uniform(n: int, generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=draw_device(generator, device),
                      dtype=torch.float64).to(device)


def priorities(scores: torch.Tensor, soft: bool, generator: torch.Generator | None = None,
               exponent: float = 1.0) -> torch.Tensor:
    """``(N,)`` float64 priorities for ``scores (N,)`` >= 0 (see module docstring)."""
    u = _uniform(scores.numel(), generator, scores.device)
    positive = scores > 0
    s = scores.double()
    if soft:
        value = exponent * torch.log(s.clamp(min=1e-300)) - torch.log(-torch.log1p(-u))
    else:  # tie-break within half a float32 ulp: distinct scores keep their order
        gap = (torch.nextafter(scores.float(), torch.tensor(float("inf"), device=scores.device)).double() - s)
        value = s + u * gap * 0.5
    return torch.where(positive, value, _FLOOR * (1.0 + u))


def top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the ``k`` largest values (all if fewer)."""
    return torch.topk(values, min(k, values.numel()), sorted=False).indices


class StreamingTopK:
    """The k largest priorities pushed, with their int64 keys, gathered block by block: each block's k best
    join the candidates, which are cut back to the k largest whenever they pass 2k (so a push costs its
    block, not a merge with all k kept so far). ``keys``: the k (or fewer) chosen, in no order."""

    def __init__(self, k: int, device=None):
        self.k = k
        self._priority = torch.empty(0, dtype=torch.float64, device=device)
        self._keys = torch.empty(0, dtype=torch.int64, device=device)

    def push(self, priority: torch.Tensor, keys: torch.Tensor) -> None:
        if self.k == 0 or priority.numel() == 0:
            return
        best = top_k(priority, self.k)
        self._priority = torch.cat((self._priority, priority[best]))
        self._keys = torch.cat((self._keys, keys[best]))
        if self._priority.numel() > 2 * self.k:
            self._cut()

    def _cut(self) -> None:
        keep = top_k(self._priority, self.k)
        self._priority, self._keys = self._priority[keep], self._keys[keep]

    @property
    def keys(self) -> torch.Tensor:
        if self._priority.numel() > self.k:
            self._cut()
        return self._keys


def select_absent(blocks, k: int, soft: bool, present_keys: torch.Tensor, total: int,
                  generator: torch.Generator | None = None, exponent: float = 1.0) -> torch.Tensor:
    """Pick ``k`` absent links from score blocks; returns sorted linear keys ``(k,)``.

    ``blocks`` yields ``(keys (N,), scores (N,))`` of absent links; only positive scores are candidates.
    If fewer than k score positive, all of them are taken and the rest are drawn uniformly from the
    absent links that scored 0 (the authors' ε fallback, made exact). ``present_keys``: sorted keys of
    the layer's links; ``total = out * in``.
    """
    stream = StreamingTopK(k, present_keys.device)
    for keys, scores in blocks:
        positive = scores > 0
        stream.push(priorities(scores[positive], soft, generator, exponent), keys[positive])
    chosen = stream.keys
    missing = k - chosen.numel()
    if missing > 0:
        taken = torch.cat((present_keys, chosen)).sort().values
        chosen = torch.cat((chosen, sample_absent_keys(taken, total, missing, generator)))
    return chosen.sort().values


def keep_mask(scores: torch.Tensor, n_keep: int, soft: bool, generator: torch.Generator | None = None,
              exponent: float = 1.0) -> torch.Tensor:
    """``(nnz,)`` bool: the ``n_keep`` links to keep (hard: largest scores; soft: sampled ∝ score^exponent)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[top_k(priorities(scores, soft, generator, exponent), n_keep)] = True
    return mask


def keep_per_sign(values: torch.Tensor, zeta: float, generator: torch.Generator | None = None,
                  scores: torch.Tensor | None = None) -> torch.Tensor:
    """``(nnz,)`` bool for link ``values (nnz,)``: SET's sign-split removal. Among the ``n₊`` positive weights
    the ``⌊ζ·n₊⌋`` of lowest score go, among the ``n₋`` negative ones the ``⌊ζ·n₋⌋`` of lowest score; weights
    exactly 0 always go (ties at random). ``scores (nnz,)`` default to |values| (closest to zero go)."""
    scores = values.abs() if scores is None else scores
    mask = torch.zeros(values.numel(), dtype=torch.bool, device=values.device)
    for side in (values > 0, values < 0):
        positions = side.nonzero().squeeze(1)
        n = positions.numel()
        mask[positions[keep_mask(scores[positions], n - int(zeta * n), False, generator)]] = True
    return mask
