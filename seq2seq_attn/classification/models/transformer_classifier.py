"""A Transformer encoder classifier (Vaswani et al., 2017, "Attention Is All You Need"; encoder only, pre-layer
norm as in Xiong et al., 2020) built on the core's ``MultiHeadAttention``, pooled by mean, a CLS token
(Devlin et al., 2019) or learned-query attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...attention import MultiHeadAttention
from ..text import CLS_ID
from .base import ClassifierOutput, padding_mask
from .pooling import QueryAttentionPooling


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) sine/cosine position encodings (Vaswani et al., section 3.5)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freq)
    enc[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return enc


class EncoderLayer(nn.Module):
    """Pre-LN self-attention + feed-forward block."""

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm1(x)
        h, weights = self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=need_weights)  # (B, T, D)
        x = x + self.dropout(h)
        x = x + self.dropout(self.ff(self.norm2(x)))
        return x, weights  # weights: (B, T, T) averaged over heads, when asked


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128, num_layers: int = 2,
                 num_heads: int = 4, ff_dim: int = 512, pooling: str = "attention", score: str = "scaled_dot",
                 attention_dim: int | None = None, dropout: float = 0.1, embed_dropout: float = 0.1) -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "attention"):
            raise ValueError(f"unknown pooling {pooling!r}: expected mean, cls or attention")
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.scale = math.sqrt(embed_dim)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(EncoderLayer(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.pool = QueryAttentionPooling(embed_dim, score, attention_dim) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> ClassifierOutput:
        # tokens (B, T), lengths (B,)
        if self.pooling == "cls":
            cls = tokens.new_full((tokens.size(0), 1), CLS_ID)
            tokens, lengths = torch.cat([cls, tokens], dim=1), lengths + 1  # (B, 1 + T)
        b, t = tokens.shape
        mask = padding_mask(lengths, t)  # (B, T)
        x = self.embed(tokens) * self.scale + sinusoidal_positions(t, self.embed.embedding_dim, tokens.device)
        x = self.embed_dropout(x)
        last = None
        for i, layer in enumerate(self.layers):
            # The CLS pooling is explained by the last layer's attention from the CLS position.
            want = self.pooling == "cls" and i == len(self.layers) - 1
            x, last = layer(x, mask, need_weights=want)
        x = self.norm(x)  # (B, T, D)
        if self.pooling == "attention":
            pooled, weights = self.pool(x, mask)  # (B, D), (B, T)
        elif self.pooling == "mean":
            # Mean pooling is attention with uniform weights over the real tokens.
            weights = (~mask).float() / lengths.clamp(min=1).unsqueeze(1).float()  # (B, T)
            pooled = (weights.unsqueeze(-1) * x).sum(1)
        else:
            pooled = x[:, 0]
            row = last[:, 0, 1:]  # (B, T-1): CLS's attention over the document's tokens
            weights = row / row.sum(-1, keepdim=True).clamp(min=1e-12)  # without the CLS position itself
        return ClassifierOutput(self.head(self.dropout(pooled)), weights)
