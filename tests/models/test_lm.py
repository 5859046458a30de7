"""The language model's attention hands ``scaled_dot_product_attention`` q, k and v with a unit last stride (what
the fused flash and memory-efficient kernels need), for sparse projections (feature-major outputs) and dense."""
import pytest
import torch
from torch.nn import functional as F

from sparsenet.models.lm import LanguageModel, rotate
from tests.devices import DEVICES

SDPA = F.scaled_dot_product_attention


def _strided_like_before(x: torch.Tensor) -> torch.Tensor:
    """``x (B, H, T, D)`` with the same values and a last stride above 1, as q/k/v of sparse projections had."""
    return x.transpose(-1, -2).contiguous().transpose(-1, -2)


@pytest.mark.parametrize("density", [0.5, None])
@pytest.mark.parametrize("device", DEVICES)
def test_q_k_v_reach_attention_with_unit_last_stride_and_the_outputs_are_unchanged(density, device, monkeypatch):
    torch.manual_seed(0)
    model = LanguageModel(50, d_model=32, heads=4, layers=2, d_ff=48, context=16, density=density,
                          generator=torch.Generator().manual_seed(0)).to(device)
    tokens = torch.randint(50, (3, 12), generator=torch.Generator().manual_seed(1)).to(device)
    strides = []

    def recording(q, k, v, **kwargs):
        strides.append((q.stride(-1), k.stride(-1), v.stride(-1)))
        return SDPA(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    logits = model(tokens)
    assert strides == [(1, 1, 1)] * 2
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda q, k, v, **kwargs: SDPA(*map(_strided_like_before, (q, k, v)), **kwargs))
    before = model(tokens)  # the unfused kernel, which strided inputs got: the same up to float32 rounding
    torch.testing.assert_close(logits, before, rtol=1e-5, atol=1e-5)


def test_rotate_returns_a_contiguous_tensor_with_the_values_of_its_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 10, generator=g).t().reshape(2, 5, 4, 6).transpose(1, 2)  # a feature-major projection's
    cos, sin = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    first, second = x.chunk(2, -1)
    rotated = rotate(x, cos, sin)
    assert rotated.is_contiguous()
    assert torch.equal(rotated, x * cos + torch.cat((-second, first), -1) * sin)
