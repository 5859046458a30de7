"""``Dropout``: ``nn.Dropout`` whose CPU path draws its mask twice as fast and saves it as bool.

On CPU, ``torch.nn.functional.dropout`` draws a float32 Bernoulli noise tensor with ``bernoulli_``, scales
it and multiplies. Autograd then keeps the float noise for backward, 4 bytes per element. ``Dropout``
instead draws ``torch.rand_like(x) >= p``, in ``x``'s layout, and keeps the bool mask, 1 byte per element.
It multiplies by the mask and 1/(1 - p) in forward, and again in backward.

Measured on this workplace's AMD EPYC, 2 threads, 1024×2048 elements: ``bernoulli_`` 8.6 ms against 4.2 ms
for ``rand >= p``. On the paper-size IWSLT14 Transformer's 22.7M dropout elements per step, the dense
and the sparse model alike, that is about a third of what sparsity cannot touch.

On other devices it calls ``F.dropout``, whose fused kernels already save a bool mask. ``inplace=True``
also takes ``F.dropout`` on every device: torch's in-place path, which makes no new output tensor but on
CPU keeps the float32 noise for backward.

Distribution: each element is kept with probability 1 - p and scaled by 1/(1 - p), as ``nn.Dropout`` does.
The random stream differs from ``nn.Dropout``'s, and is drawn from the same global generator.
"""
import torch
from torch import nn
from torch.nn import functional as F


class _KeepAndScale(torch.autograd.Function):
    """``x * keep * scale`` for a bool ``keep`` of ``x``'s shape; saves ``keep`` alone for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return (x * keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        keep, = ctx.saved_tensors
        return (grad * keep).mul_(ctx.scale), None, None


class Dropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` (same ``p`` and ``inplace``); input and output ``(*)``, any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p == 1.0 or self.inplace:
            return F.dropout(x, self.p, True, self.inplace)
        # in x's layout (a sparse layer's output stays feature-major, and no operand is read strided)
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return _KeepAndScale.apply(x, keep, 1.0 / (1.0 - self.p))
