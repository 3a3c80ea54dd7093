"""Normalizers: turn scores into attention weights.

Masks follow ``torch.nn.MultiheadAttention``: a boolean ``mask`` broadcastable to the scores where ``True``
means "not allowed to attend". Masked keys get exactly zero weight, and a row whose keys are all masked gets
all zeros (never NaN, in the forward or the backward pass).
"""

from __future__ import annotations

import torch
from torch import nn


def _masked_scores(scores: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill masked scores with -inf; return also which rows are entirely masked."""
    if mask is None:
        return scores, None
    scores = scores.masked_fill(mask, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    # An all--inf row would give NaN in softmax (and its gradient); score it uniformly, then zero it below.
    scores = scores.masked_fill(empty, 0.0)
    return scores, empty


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, temperature: float = 1.0,
                   dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` that ignores masked positions; fully masked rows give zeros."""
    if temperature != 1.0:
        scores = scores / temperature
    scores, empty = _masked_scores(scores, mask)
    weights = torch.softmax(scores, dim=dim)
    if empty is not None:
        weights = weights.masked_fill(empty, 0.0)
    return weights


class Normalizer(nn.Module):
    """Base class: maps ``(scores, mask)`` to weights, with a temperature ``T > 0`` dividing the scores."""

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class Softmax(Normalizer):
    """Masked softmax with optional temperature (``weights = softmax(scores / T)``)."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_softmax(scores, mask, self.temperature)


class Sigmoid(Normalizer):
    """Independent gates ``sigmoid(scores / T)`` (weights need not sum to one); masked positions give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = torch.sigmoid(scores / self.temperature)
        if mask is not None:
            weights = weights.masked_fill(mask, 0.0)
        return weights


class HardMax(Normalizer):
    """Hard attention: one-hot on the best unmasked key, with straight-through softmax gradients.

    The forward pass puts all weight on the arg-max key; the backward pass uses the gradient of the masked
    softmax (Bengio et al., 2013, straight-through estimator).
    """

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        soft = masked_softmax(scores, mask, self.temperature)
        index = soft.argmax(dim=-1, keepdim=True)
        hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
        if mask is not None:
            hard = hard * (soft.sum(dim=-1, keepdim=True) > 0)  # fully masked rows stay zero
        return hard + (soft - soft.detach())  # exactly one-hot forward, softmax gradient backward


def build_normalizer(name: str, temperature: float = 1.0) -> nn.Module:
    """Build a normalizer by name: softmax, sigmoid or hard."""
    table = {"softmax": Softmax, "sigmoid": Sigmoid, "hard": HardMax}
    if name not in table:
        raise ValueError(f"unknown normalizer {name!r}: expected one of {', '.join(table)}")
    return table[name](temperature)
