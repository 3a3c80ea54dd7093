"""What every classifier returns: logits and the attention weights that explain them."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, C)
    # Flat models: (B, T), one weight per token. HAN: (B, S, W), word weights inside each sentence.
    token_weights: torch.Tensor
    sentence_weights: torch.Tensor | None = None  # HAN only: (B, S)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool mask, True at padding."""
    return torch.arange(max_len, device=lengths.device) >= lengths.unsqueeze(-1)
