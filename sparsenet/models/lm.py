"""Decoder-only LLaMA-style language model whose attention and MLP projections are sparse.

A native model rather than transformers' ``LlamaForCausalLM``: the recipe must run without the optional
``[hf]`` extra, and owning the blocks keeps the sparse layers and their percolation relations explicit
(the same architecture through ``sparsify`` + ``LlamaForCausalLM`` is tested in tests/models/test_huggingface.py).
Per block: RMSNorm → causal multi-head attention with rotary positions (q_proj, k_proj, v_proj, o_proj) →
residual; RMSNorm → SwiGLU MLP (down_proj(silu(gate_proj x) ⊙ up_proj x)) → residual. A final RMSNorm and an
output head tied to the token embedding (dense). ``density=None`` builds the dense model.
Initialisation as LLaMA's reference: every dense ≥ 2-D matrix N(0, 0.02²); sparse projections get their
values from the method's initialiser (``init_sparse_model``).
"""
import torch
from torch import nn
from torch.nn import functional as F

from ..evolution.percolation import Chain, SamePosition
from ..sparse import SparseLinear
from ..sparse.functional import shared_inputs
from .dropout import Dropout


def _projection(in_features: int, out_features: int, density: float | None, generator) -> nn.Module:
    if density is None:
        return nn.Linear(in_features, out_features, bias=False)
    return SparseLinear(in_features, out_features, bias=False, density=density, generator=generator)


def rotary_tables(length: int, d_head: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of shape ``(length, d_head)`` for rotary position embeddings (halves rotated)."""
    frequency = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)
    angle = torch.arange(length, dtype=torch.float32)[:, None] * frequency[None]
    angle = torch.cat((angle, angle), -1)
    return angle.cos(), angle.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x (B, heads, T, d_head)`` with tables ``(T, d_head)``: ``x·cos + rotated(x)·sin``,
    contiguous whatever ``x``'s layout (the rotated halves, a new contiguous tensor, lead the sum, whose result
    takes its first operand's layout)."""
    first, second = x.chunk(2, -1)
    return torch.cat((-second, first), -1) * sin + x * cos


def _last_dim_dense(x: torch.Tensor) -> torch.Tensor:
    """``x`` with ``stride(-1) == 1`` (a copy only when it is not): what the fused flash and memory-efficient
    attention kernels need of q, k and v, else ``scaled_dot_product_attention`` falls back to its unfused one."""
    return x if x.stride(-1) == 1 else x.contiguous()


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, density: float | None, generator=None):
        super().__init__()
        self.heads, self.d_head = heads, d_model // heads
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (_projection(d_model, d_model, density, generator)
                                                              for _ in range(4))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, self.heads, self.d_head).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k, v = rotate(q, cos, sin), rotate(k, cos, sin), _last_dim_dense(v)  # v: a sparse layer's is feature-major
        context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(context.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int, density: float | None, generator=None):
        super().__init__()
        self.gate_proj = _projection(d_model, d_ff, density, generator)
        self.up_proj = _projection(d_model, d_ff, density, generator)
        self.down_proj = _projection(d_ff, d_model, density, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, d_model, heads, d_ff, dropout, density, generator=None):
        super().__init__()
        self.attention_norm, self.mlp_norm = nn.RMSNorm(d_model), nn.RMSNorm(d_model)
        self.attention = Attention(d_model, heads, density, generator)
        self.mlp = SwiGLU(d_model, d_ff, density, generator)
        self.dropout = Dropout(dropout)

    def forward(self, x, cos, sin):
        x = x + self.dropout(self.attention(self.attention_norm(x), cos, sin))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class LanguageModel(nn.Module):
    """``forward(tokens (B, T)) -> logits (B, T, vocab)``, causal; ``T`` at most ``context``."""

    def __init__(self, vocab: int, d_model: int = 320, heads: int = 5, layers: int = 6, d_ff: int = 864,
                 context: int = 128, dropout: float = 0.0, density: float | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if d_model % heads or (d_model // heads) % 2:
            raise ValueError(f"d_model {d_model} must split into {heads} heads of even width")
        self.context = context
        self.embedding = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, d_ff, dropout, density, generator) for _ in range(layers))
        self.norm = nn.RMSNorm(d_model)
        cos, sin = rotary_tables(context, d_model // heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, 0.0, 0.02, generator=generator)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of {t} tokens is longer than the model's context {self.context}")
        x = self.embedding(tokens)
        with shared_inputs():  # q, k, v (and gate, up) of one input: one feature-major copy
            for block in self.blocks:
                x = block(x, self.cos[:t], self.sin[:t])
        return self.norm(x) @ self.embedding.weight.t()

    def percolation_relations(self) -> list:
        """Per block: q/k and gate/up at the same position, v→o, gate→down and up→down chains (the CHTss
        paper's percolation, arXiv 2501.19107, Appendix F, as the authors' LLaMA code applies it)."""
        relations = []
        for block in self.blocks:
            a, m = block.attention, block.mlp
            if isinstance(a.q_proj, SparseLinear):
                relations += [SamePosition(a.q_proj, a.k_proj), Chain((a.v_proj, a.o_proj)),
                              SamePosition(m.gate_proj, m.up_proj), Chain((m.gate_proj, m.down_proj)),
                              Chain((m.up_proj, m.down_proj))]
        return relations
