"""Encoder-decoder Transformer (the CHTss paper's, arXiv 2501.19107, §4.1 and Table 5) whose attention and
FFN layers are sparse.

Every attention projection (self and cross: Q, K, V, O) and both FFN layers are ``SparseLinear``;
embeddings, layer norms and the output generator stay dense. Pre-norm residual blocks, sinusoidal positions.
``density=None`` builds the dense model. Decoding is incremental: ``decode_step`` keeps per-layer key/value
caches.

Initialisation, as the authors' OpenNMT runs (``-param_init 0 -param_init_glorot``): every dense parameter
of two or more dimensions — embeddings, generator, and the dense model's linears — is Xavier-uniform,
U(±sqrt(6 / (fan_in + fan_out))); the padding row of the embeddings is zero; biases and layer norms keep
PyTorch's defaults (OpenNMT's Glorot rule touches only >= 2-D parameters). Sparse layers get their values from the method's initialiser (``init_sparse_model``).
Embeddings are scaled by sqrt(d_model) before the positions are added.

``tie_embeddings`` (``TIE_MODES``), for a joint vocabulary: ``"source_target"`` (default) one embedding
matrix for both languages and a separate generator (fairseq's share-decoder-input-output is not used);
``"all"`` one ``(vocab, d_model)`` matrix for the source embedding, the target embedding and the generator's
weight, without generator bias (fairseq's share-all-embeddings); ``"none"`` three separate matrices, as the
authors' OpenNMT runs with separate vocabularies. A matrix shared between languages is initialised as
fairseq does, N(0, 1/d_model), so token vectors have unit scale after the sqrt(d) factor; separate
embeddings are Xavier as OpenNMT (at d 256 and a 4,000-piece vocabulary about half the RMS of the
positions). The three modes' 1,500-step dense runs are compared in results/transformer_multi30k.md.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..evolution.percolation import Chain, SamePosition
from ..sparse import SparseLinear
from ..sparse.functional import shared_inputs
from .dropout import Dropout


TIE_MODES = ("source_target", "all", "none")


def _linear(in_features: int, out_features: int, density: float | None, generator) -> nn.Module:
    if density is None:
        return nn.Linear(in_features, out_features)
    return SparseLinear(in_features, out_features, density=density, generator=generator)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention; ``query (B, Tq, d)``, ``memory (B, Tk, d)``, ``mask`` broadcastable
    to ``(B, heads, Tq, Tk)`` with True where attention is allowed."""

    def __init__(self, d_model: int, heads: int, dropout: float, density: float | None, generator=None):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.d_head = heads, d_model // heads
        self.q, self.k, self.v, self.o = (_linear(d_model, d_model, density, generator) for _ in range(4))
        self.dropout = Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.d_head).transpose(1, 2)

    def forward(self, query, memory, mask, cache: dict | None = None, static: bool = False) -> torch.Tensor:
        """``cache``: dict kept across decoding steps; ``static``: memory is fixed (cross-attention), so its
        keys and values are projected once."""
        if cache is not None and static and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self._split(self.k(memory)), self._split(self.v(memory))
            if cache is not None:
                if not static and "k" in cache:
                    k, v = torch.cat((cache["k"], k), 2), torch.cat((cache["v"], v), 2)
                cache["k"], cache["v"] = k, v
        q = self._split(self.q(query))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        scores = scores.masked_fill(~mask, float("-inf"))
        attention = self.dropout(torch.softmax(scores, -1))
        context = (attention @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], self.heads * self.d_head)
        return self.o(context)

    def relations(self) -> list:
        if not isinstance(self.q, SparseLinear):
            return []
        return [SamePosition(self.q, self.k), Chain((self.v, self.o))]


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float, density: float | None, generator=None):
        super().__init__()
        self.w1 = _linear(d_model, d_ff, density, generator)
        self.w2 = _linear(d_ff, d_model, density, generator)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.w2(self.dropout(torch.relu(self.w1(x))))

    def relations(self) -> list:
        return [Chain((self.w1, self.w2))] if isinstance(self.w1, SparseLinear) else []


class EncoderLayer(nn.Module):
    def __init__(self, d_model, heads, d_ff, dropout, attention_dropout, density, generator=None):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, heads, attention_dropout, density, generator)
        self.ffn = FeedForward(d_model, d_ff, dropout, density, generator)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x, mask):
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, mask))
        return x + self.dropout(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d_model, heads, d_ff, dropout, attention_dropout, density, generator=None):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads, attention_dropout, density, generator)
        self.cross_attention = MultiHeadAttention(d_model, heads, attention_dropout, density, generator)
        self.ffn = FeedForward(d_model, d_ff, dropout, density, generator)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x, memory, self_mask, memory_mask, cache: dict | None = None):
        h = self.norm1(x)
        x = x + self.dropout(self.self_attention(h, h, self_mask, None if cache is None else cache["self"]))
        h = self.norm2(x)
        x = x + self.dropout(self.cross_attention(h, memory, memory_mask, None if cache is None else cache["cross"],
                                                  static=True))
        return x + self.dropout(self.ffn(self.norm3(x)))


def sinusoids(length: int, d_model: int) -> torch.Tensor:
    """``(length, d_model)`` sinusoidal position encodings."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table


class Transformer(nn.Module):
    """``forward(src (B, S), tgt_in (B, T)) -> logits (B, T, vocab)``; token 0 is padding."""

    def __init__(self, vocab: int, d_model: int = 512, heads: int = 8, layers: int = 6, d_ff: int = 2048,
                 dropout: float = 0.1, attention_dropout: float = 0.1, density: float | None = None,
                 max_length: int = 512, generator: torch.Generator | None = None,
                 tie_embeddings: str = "source_target"):
        super().__init__()
        if tie_embeddings not in TIE_MODES:
            raise ValueError(f"unknown tie_embeddings {tie_embeddings!r}; choose from {list(TIE_MODES)}")
        self.d_model, self.pad = d_model, 0
        self.source_embedding = nn.Embedding(vocab, d_model, padding_idx=0)
        self.target_embedding = (self.source_embedding if tie_embeddings != "none"
                                 else nn.Embedding(vocab, d_model, padding_idx=0))
        self.register_buffer("positions", sinusoids(max_length, d_model), persistent=False)
        args = (d_model, heads, d_ff, dropout, attention_dropout, density, generator)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.generator = nn.Linear(d_model, vocab, bias=tie_embeddings != "all")
        self.dropout = Dropout(dropout)
        self._init_dense(generator, tie_embeddings)
        if tie_embeddings == "all":
            self.generator.weight = self.source_embedding.weight

    @torch.no_grad()
    def _init_dense(self, generator, tie_embeddings: str) -> None:
        """Xavier-uniform for every dense parameter of >= 2 dimensions, except an embedding matrix shared
        between languages: N(0, 1/d_model) as fairseq; zero padding rows."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                if tie_embeddings != "none" and module is self.source_embedding:
                    nn.init.normal_(module.weight, 0.0, self.d_model ** -0.5, generator=generator)
                elif not (tie_embeddings == "all" and module is self.generator):
                    nn.init.xavier_uniform_(module.weight, generator=generator)
                if isinstance(module, nn.Embedding):
                    module.weight[module.padding_idx].zero_()

    def _embed(self, embedding: nn.Embedding, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = embedding(tokens) * math.sqrt(self.d_model)
        return self.dropout(x + self.positions[offset:offset + tokens.shape[1]])

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(memory (B, S, d), memory_mask (B, 1, 1, S))``."""
        mask = (src != self.pad)[:, None, None, :]
        x = self._embed(self.source_embedding, src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        t = tgt_in.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()
        mask = causal[None, None] & (tgt_in != self.pad)[:, None, None, :]
        x = self._embed(self.target_embedding, tgt_in)
        for layer in self.decoder:
            x = layer(x, memory, mask, memory_mask)
        return self.generator(self.decoder_norm(x))

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        with shared_inputs():  # Q, K, V of one input, and every decoder layer's K, V of the memory: one copy
            memory, memory_mask = self.encode(src)
            return self.decode(tgt_in, memory, memory_mask)

    def new_cache(self) -> list:
        return [{"self": {}, "cross": {}} for _ in self.decoder]

    def decode_step(self, token: torch.Tensor, position: int, memory, memory_mask, cache: list) -> torch.Tensor:
        """Log-probabilities ``(B, vocab)`` of the next token after ``token (B, 1)`` at ``position``."""
        self_mask = torch.ones(token.shape[0], 1, 1, position + 1, dtype=torch.bool, device=token.device)
        x = self._embed(self.target_embedding, token, offset=position)
        for layer, layer_cache in zip(self.decoder, cache):
            x = layer(x, memory, self_mask, memory_mask, layer_cache)
        return F.log_softmax(self.generator(self.decoder_norm(x))[:, -1], -1)

    def percolation_relations(self) -> list:
        """Q–K same-position pairs, V→O and W1→W2 chains of every attention block and FFN."""
        relations = []
        for module in self.modules():
            if isinstance(module, (MultiHeadAttention, FeedForward)):
                relations += module.relations()
        return relations
