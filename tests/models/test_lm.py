"""The language model's attention hands ``scaled_dot_product_attention`` q, k and v with a unit last stride (what
the fused flash and memory-efficient kernels need), for sparse projections (feature-major outputs) and dense."""
import pytest
import torch
from torch.nn import functional as F

from sparsenet.models.lm import LanguageModel, rotary_tables, rotate
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


def test_rotary_tables_hold_the_hand_computed_angles():
    """d_head 4, base 100: frequencies 100^(-0/4) = 1 and 100^(-2/4) = 0.1; position p's angles (p, 0.1p, p, 0.1p)."""
    cos, sin = rotary_tables(3, 4, base=100.0)
    angles = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.1, 1.0, 0.1], [2.0, 0.2, 2.0, 0.2]], dtype=torch.float64)
    assert cos.shape == sin.shape == (3, 4) and cos.dtype == sin.dtype == torch.float32
    torch.testing.assert_close(cos.double(), angles.cos(), rtol=0, atol=1e-7)
    torch.testing.assert_close(sin.double(), angles.sin(), rtol=0, atol=1e-7)
    default_cos, _ = rotary_tables(2, 4)  # base 10000: frequencies 1 and 0.01
    torch.testing.assert_close(default_cos[1].double(), torch.tensor([1.0, 0.01, 1.0, 0.01]).double().cos(),
                               rtol=0, atol=1e-7)


def _reference_logits(model: LanguageModel, tokens: torch.Tensor) -> torch.Tensor:
    """The model's forward written out from its definition, in float64: embedding, per block RMSNorm → causal
    attention with rotary positions (angles p·base^(-2i/d)) → residual, RMSNorm → SwiGLU → residual, a final
    RMSNorm and the head tied to the embedding."""
    def rms(x, norm):
        return x / (x.pow(2).mean(-1, keepdim=True) + norm.eps).sqrt() * norm.weight.double()

    def linear(x, layer):
        return x @ layer.weight.double().t()

    def rope(x):  # (B, H, T, D)
        d, t = x.shape[-1], x.shape[-2]
        frequency = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        angle = torch.arange(t, dtype=torch.float64)[:, None] * frequency
        angle = torch.cat((angle, angle), -1)
        half = d // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
        return x * angle.cos() + rotated * angle.sin()

    b, t = tokens.shape
    x = model.embedding.weight.double()[tokens]
    for block in model.blocks:
        attention, heads = block.attention, block.attention.heads
        h = rms(x, block.attention_norm)
        q, k, v = (linear(h, p).view(b, t, heads, -1).transpose(1, 2)
                   for p in (attention.q_proj, attention.k_proj, attention.v_proj))
        q, k = rope(q), rope(k)
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + linear(context, attention.o_proj)
        h = rms(x, block.mlp_norm)
        mlp = block.mlp
        x = x + linear(F.silu(linear(h, mlp.gate_proj)) * linear(h, mlp.up_proj), mlp.down_proj)
    return rms(x, model.norm) @ model.embedding.weight.double().t()


def test_forward_matches_its_definition_written_out_in_float64():
    """Every component by value: norms with distinct weights (so a swapped or dropped norm shows), rotary positions,
    the causal mask, SwiGLU's gate and the tied head, against the reference above."""
    g = torch.Generator().manual_seed(0)
    model = LanguageModel(30, d_model=16, heads=2, layers=2, d_ff=24, context=8, generator=g)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.RMSNorm):
                module.weight.copy_(torch.rand(16, generator=g) + 0.5)
                module.eps = 1e-6
    tokens = torch.randint(30, (2, 7), generator=g)
    expected = _reference_logits(model, tokens)  # the model's rotary tables are float32: agreement to ~1e-7
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(model.double()(tokens), expected, rtol=1e-6, atol=1e-9)
