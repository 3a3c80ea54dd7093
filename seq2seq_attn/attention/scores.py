"""Score functions: how well each key matches a query.

Every score maps ``query (..., Tq, Dq)`` and ``keys (..., Tk, Dk)`` to ``scores (..., Tq, Tk)``; the leading
dimensions are batch (and, for dot-product scores, heads). Scores with key-side parameters split the work in
two so that decoders project the encoder states once per sentence, not once per step::

    projected = score.project_keys(keys)      # once
    scores = score.score(query, projected)    # every step

References: Luong et al., 2015, "Effective Approaches to Attention-based Neural Machine Translation" (dot,
general, concat, location); Bahdanau et al., 2015, "Neural Machine Translation by Jointly Learning to Align
and Translate" (additive); Vaswani et al., 2017, "Attention Is All You Need" (scaled dot).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Score(nn.Module):
    """Base class: ``forward(query, keys) = score(query, project_keys(keys))``."""

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return keys

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return self.score(query, self.project_keys(keys))


class DotScore(Score):
    """``q . k`` (Luong "dot")."""

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        return query @ projected_keys.transpose(-2, -1)  # (..., Tq, Tk)


class ScaledDotScore(Score):
    """``q . k / sqrt(d)`` (Vaswani et al.); ``scale`` overrides ``1/sqrt(d)``."""

    def __init__(self, scale: float | None = None) -> None:
        super().__init__()
        self.scale = scale

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        scale = self.scale if self.scale is not None else 1.0 / math.sqrt(query.size(-1))
        return (query * scale) @ projected_keys.transpose(-2, -1)  # (..., Tq, Tk)


class GeneralScore(Score):
    """Bilinear ``q^T W k`` (Luong "general"); ``W k`` is computed once per key set."""

    def __init__(self, query_dim: int, key_dim: int, bias: bool = False) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_dim, query_dim, bias=bias)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (..., Tk, Dq)

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        return query @ projected_keys.transpose(-2, -1)


class AdditiveScore(Score):
    """``v^T tanh(W_q q + W_k k)`` (Bahdanau "additive"; Luong "concat", ``W [q; k]`` split in two)."""

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int | None = None, bias: bool = True) -> None:
        super().__init__()
        hidden_dim = hidden_dim or query_dim
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=bias)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (..., Tk, H)

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        q = self.query_proj(query).unsqueeze(-2)  # (..., Tq, 1, H)
        k = projected_keys.unsqueeze(-3)  # (..., 1, Tk, H)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (..., Tq, Tk)


#: Luong's name for the additive score.
ConcatScore = AdditiveScore


class LocationScore(Score):
    """``W q`` (Luong "location"): scores depend on the query alone, one per source position.

    ``max_keys`` bounds the source length; longer key sets are an error.
    """

    def __init__(self, query_dim: int, max_keys: int) -> None:
        super().__init__()
        self.max_keys = max_keys
        self.proj = nn.Linear(query_dim, max_keys)

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        num_keys = projected_keys.size(-2)
        if num_keys > self.max_keys:
            raise ValueError(f"LocationScore: {num_keys} keys, but max_keys={self.max_keys}")
        return self.proj(query)[..., :num_keys]  # (..., Tq, Tk)


def build_score(name: str, query_dim: int, key_dim: int, hidden_dim: int | None = None,
                max_keys: int = 256) -> Score:
    """Build a score function by name: dot, scaled_dot, general, additive/concat, location."""
    if name == "dot":
        if query_dim != key_dim:
            raise ValueError(f"dot score needs query_dim == key_dim, got {query_dim} and {key_dim}")
        return DotScore()
    if name == "scaled_dot":
        if query_dim != key_dim:
            raise ValueError(f"scaled_dot score needs query_dim == key_dim, got {query_dim} and {key_dim}")
        return ScaledDotScore()
    if name == "general":
        return GeneralScore(query_dim, key_dim)
    if name in ("additive", "concat"):
        return AdditiveScore(query_dim, key_dim, hidden_dim)
    if name == "location":
        return LocationScore(query_dim, max_keys)
    raise ValueError(f"unknown score {name!r}: expected dot, scaled_dot, general, additive, concat or location")


SCORE_NAMES = ("dot", "scaled_dot", "general", "additive", "concat", "location")
