"""Removal scores over a layer's active links, each ``(nnz,)`` float, higher = more worth keeping."""
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


def mest(layer, mest_lambda: float = 1.0, **_) -> torch.Tensor:
    """|w| + λ|g| (MEST), g the gradient of the last backward (zeros if none)."""
    grad = layer.values.grad
    w = layer.values.detach().abs()
    return w if grad is None else w + mest_lambda * grad.detach().abs()


REMOVAL_SCORES = {"wm": magnitude, "ri": relative_importance, "mest": mest}
