"""Attention pooling with a learned query: the attention layer of the classifiers studied by Sun & Lu (2020,
"Understanding Attention for Text Classification") and of HAN (Yang et al., 2016).

A single learned query vector ``q`` (a ``(1, 1, D)`` parameter expanded over the batch) is scored against
every state ``h_t`` with the core's score functions (``build_score``); the core normalizer (masked softmax by
default, any registered one by name) turns the scores into weights and the pooled vector is their weighted
sum::

    scaled_dot: s_t = q . h_t / sqrt(D)
    additive:   s_t = v^T tanh(W_q q + W_k h_t)     (Yang et al.'s u_t = tanh(W h_t + b), s_t = u_t . u_w)

With ``num_queries`` r > 1, r learned queries attend independently and their pooled vectors are concatenated
(the multi-hop attention of Lin et al., 2017, "A Structured Self-attentive Sentence Embedding", without its
penalty term): one query can follow the question word while another finds the head noun. The weights
returned for display are the mean over the queries, still a distribution over the tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from ...attention import Attention, build_normalizer, build_score

POOLING_SCORES = ("dot", "scaled_dot", "general", "additive")  # the core scores a learned query can use


class QueryAttentionPooling(nn.Module):
    """Pool ``(B, T, D)`` states into ``(B, r * D)`` with r learned queries; returns the pooled vectors and the
    weights (mean over the queries).

    Args:
        dim: state size D.
        score: ``dot``, ``scaled_dot``, ``general`` (bilinear) or ``additive`` (Luong et al., 2015's names).
        attention_dim: hidden size of the additive score (default D).
        num_queries: r.
        normalize, temperature, normalize_options: the core normalizer by name and its options
            (``build_normalizer``).

    Raises:
        ValueError: unknown score or normalizer, ``num_queries < 1``.
    """

    def __init__(self, dim: int, score: str = "additive", attention_dim: int | None = None,
                 num_queries: int = 1, normalize: str = "softmax", temperature: float = 1.0,
                 normalize_options: dict | None = None) -> None:
        super().__init__()
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        self.output_size = num_queries * dim
        self.query = nn.Parameter(torch.empty(1, num_queries, dim))
        nn.init.normal_(self.query, std=dim ** -0.5)
        if score not in POOLING_SCORES:
            raise ValueError(f"unknown pooling score {score!r}: expected one of {', '.join(POOLING_SCORES)}")
        self.attention = Attention(build_score(score, dim, dim, attention_dim or dim),
                                   build_normalizer(normalize, temperature, **(normalize_options or {})))

    def forward(
        self,
        states: torch.Tensor,  # (B, T, D)
        pad_mask: torch.Tensor,  # (B, T) bool, True = padding
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query = self.query.expand(states.size(0), -1, -1)  # (B, r, D)
        pooled, weights = self.attention(query, states, mask=pad_mask.unsqueeze(1))  # (B, r, D), (B, r, T)
        return pooled.flatten(1), weights.mean(1)  # (B, r * D), (B, T)
