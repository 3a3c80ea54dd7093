"""A Transformer encoder classifier (Vaswani et al., 2017, "Attention Is All You Need"; encoder only, pre-layer
norm as in Xiong et al., 2020, GELU feed-forward) built from the shared encoder layer and sinusoidal positions
of :mod:`seq2seq_attn.layers`, pooled by mean, a CLS token (Devlin et al., 2019) or learned-query attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...layers import PositionalEncoding, SequenceChannelGate, TransformerEncoderLayer
from ..text import CLS_ID
from .base import ClassifierOutput, padding_mask
from .pooling import QueryAttentionPooling


class TransformerClassifier(nn.Module):
    """tokens (B, T) and lengths (B,) -> :class:`ClassifierOutput`: logits (B, C) and token weights (B, T).

    Embeddings scaled by sqrt(D) plus sinusoidal positions, ``num_layers`` pre-LN encoder layers (GELU), a
    final LayerNorm, then pooling: ``mean`` (uniform weights over the real tokens), ``cls`` (a CLS token
    prepended; its last-layer attention, head-averaged, explains the decision) or ``attention`` (a learned
    query with the ``score`` function). ``channel_gate`` (``se``/``eca``, None: no gate) gates the final
    states' D channels before the pooling (the squeeze: the mean over the real tokens).
    ``self_attention_score`` is the layers' self-attention score (``scaled_dot``, ``dot``, ``general``,
    ``additive``: :class:`~seq2seq_attn.attention.MultiHeadAttention`'s ``score``). Raises ``ValueError``
    for an unknown pooling, gate or score.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128, num_layers: int = 2,
                 num_heads: int = 4, ff_dim: int = 512, pooling: str = "attention", score: str = "scaled_dot",
                 attention_dim: int | None = None, dropout: float = 0.1, embed_dropout: float = 0.1,
                 channel_gate: str | None = None, self_attention_score: str = "scaled_dot") -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "attention"):
            raise ValueError(f"unknown pooling {pooling!r}: expected mean, cls or attention")
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.scale = math.sqrt(embed_dim)
        self.positions = PositionalEncoding(embed_dim, None)  # sinusoidal, cached, any length
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(embed_dim, num_heads, ff_dim, dropout, activation="gelu", norm_first=True,
                                    attention_score=self_attention_score)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.channel_gate = None if channel_gate is None else SequenceChannelGate(channel_gate, embed_dim)
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
        x = self.embed(tokens) * self.scale + self.positions(0, t)  # (B, T, D)
        x = self.embed_dropout(x)
        last = None
        for i, layer in enumerate(self.layers):
            # The CLS pooling is explained by the last layer's attention from the CLS position.
            want = self.pooling == "cls" and i == len(self.layers) - 1
            x, last = layer.forward_with_weights(x, mask, need_weights=want)  # last: (B, T, T) when wanted
        x = self.norm(x)  # (B, T, D)
        if self.channel_gate is not None:
            x = self.channel_gate(x, mask)  # (B, T, D)
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
