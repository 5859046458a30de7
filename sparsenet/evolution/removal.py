"""Removal scores over a layer's active links, each ``(nnz,)`` float, higher = more worth keeping.

``wm_signed`` scores by |w| like ``wm`` but is selected per sign (``SIGN_SPLIT``; see
``selection.keep_per_sign``): the ζ share of positive and of negative weights closest to zero go, as in
SET's paper and the ICLR-2024 CHT."""
import torch

RI_EPSILON = 1e-5


def magnitude(layer, **_) -> torch.Tensor:
    """|w| (WM)."""
    return layer.values.detach().abs()


def relative_importance(layer, **_) -> torch.Tensor:
    """RI = |w|/Σ_row(|w|+ε) + |w|/Σ_col(|w|+ε): normalised by the links sharing its output neuron and
    by those sharing its input neuron (method.md §2.2), sums by scatter-add over the link list."""
    w = layer.values.detach().abs()
    rows, cols = layer.indices
    row_sum = torch.zeros(layer.out_features, dtype=w.dtype, device=w.device).index_add_(0, rows, w + RI_EPSILON)
    col_sum = torch.zeros(layer.in_features, dtype=w.dtype, device=w.device).index_add_(0, cols, w + RI_EPSILON)
    return w / row_sum[rows] + w / col_sum[cols]


def mest(layer, mest_lambda: float = 0.01, **_) -> torch.Tensor:
    """|w| + λ|g| (MEST; the authors' λ = 0.01), g the gradient of the last backward (zeros if none)."""
    grad = layer.values.grad
    w = layer.values.detach().abs()
    return w if grad is None else w + mest_lambda * grad.detach().abs()


REMOVAL_SCORES = {"wm": magnitude, "wm_signed": magnitude, "ri": relative_importance, "mest": mest}
SIGN_SPLIT = frozenset({"wm_signed"})  # scores selected separately among positive and negative weights
