"""The attention classifier of Sun & Lu (2020), "Understanding Attention for Text Classification" (ACL):
token embeddings, an optional bidirectional LSTM/GRU, attention pooling with a learned query (scaled dot or
tanh-additive score, masked softmax or another core normalizer) and a linear head; optionally a channel gate
(SE or ECA, ``channel_gate``) on the encoder's feature channels before the pooling."""

from __future__ import annotations

import torch
from torch import nn

from ...layers import PackedRNN, SequenceChannelGate
from .base import ClassifierOutput, padding_mask
from .pooling import QueryAttentionPooling


class AttentionClassifier(nn.Module):
    """tokens (B, T) and lengths (B,) -> :class:`ClassifierOutput`: logits (B, C) and token weights (B, T).

    ``encoder``: ``lstm``/``gru`` (bidirectional, ``hidden_size`` per direction) or ``none`` (the embeddings
    are the states); ``channel_gate``: ``se``/``eca`` gates the states' D channels with weights computed from
    their mean over the real tokens (:class:`~seq2seq_attn.layers.SequenceChannelGate`), None: no gate; the
    pooling's arguments: :class:`QueryAttentionPooling`. Raises ``ValueError`` for unknown names.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128, hidden_size: int = 128,
                 encoder: str = "lstm", score: str = "additive", attention_dim: int | None = None,
                 dropout: float = 0.3, embed_dropout: float = 0.1, num_queries: int = 1, normalize: str = "softmax",
                 temperature: float = 1.0, normalize_options: dict | None = None,
                 channel_gate: str | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.encoder = None if encoder == "none" else PackedRNN(embed_dim, hidden_size, cell=encoder)
        dim = embed_dim if self.encoder is None else self.encoder.output_size
        self.channel_gate = None if channel_gate is None else SequenceChannelGate(channel_gate, dim)
        self.pool = QueryAttentionPooling(dim, score, attention_dim, num_queries, normalize, temperature,
                                          normalize_options)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.pool.output_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> ClassifierOutput:
        # tokens (B, T), lengths (B,)
        mask = padding_mask(lengths, tokens.size(1))  # (B, T)
        states = self.embed_dropout(self.embed(tokens))  # (B, T, E)
        if self.encoder is not None:
            states = self.encoder(states, lengths)[0]  # (B, T, 2H)
        if self.channel_gate is not None:
            states = self.channel_gate(states, mask)  # (B, T, D), each channel scaled by its gate
        pooled, weights = self.pool(states, mask)  # (B, r * D), (B, T)
        return ClassifierOutput(self.head(self.dropout(pooled)), weights)
