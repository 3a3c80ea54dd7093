"""CC-Net criss-cross attention.

Huang, Wang, Huang, Huang, Wei, Liu, 2019, "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV,
arXiv:1811.11721.

Each position (i, j) attends only to the H + W - 1 positions of its column j and row i:

1. score (:class:`CrissCrossScore`): dot products of the query at (i, j) with the keys of column j (H scores)
   and of row i (W scores), laid out as (B, H, W, H + W);
2. normalize: one joint softmax over those H + W scores, the centre (i, j), which appears in both the column
   and the row, masked in the column part so that it counts once;
3. aggregate (:meth:`CrissCrossAttention.aggregate`): the weighted sum of the values along the column and
   the row.

:class:`CrissCrossAttention` is the core ``Attention`` with two steps overridden (the centre mask added before
normalizing, the criss-cross aggregation); the forward pass is the core's.

This costs O(HW (H + W)) instead of Non-local's O((HW)^2); it equals the core ``Attention`` over all H*W
positions with every position outside the criss-cross masked (tested). Applying the same module R times
(``recurrence``, default 2, the paper's RCCA) lets every position reach every other one. ``gamma`` starts at 0
as in the reference code. The key embedding has no bias: it would add ``q_i . b`` to every score of row i,
which the softmax cancels (same below for the other softmax modules).
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, Score, Softmax, combine_masks

from ..registry import register_attention
from ._selfattn import conv1x1, reduced_channels


def column_first(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W, ...) -> (B, W, H, ...): makes columns the sequences of a batched matmul (and back)."""
    return x.transpose(1, 2)


class CrissCrossScore(Score):
    """Scores of each position against its column and its row: (B, H, W, C) x (B, H, W, C) -> (B, H, W, H + W)."""

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        # Column j: (B, W, H, C) @ (B, W, C, H) -> (B, W, H, H) -> (B, H, W, H).
        col = column_first(column_first(query) @ column_first(projected_keys).transpose(-2, -1))
        # Row i: (B, H, W, C) @ (B, H, C, W) -> (B, H, W, W).
        row = query @ projected_keys.transpose(-2, -1)
        return torch.cat([col, row], dim=-1)


def centre_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(H, 1, H + W) bool, True at the centre's entry of the column part: position (i, j) is scored in both
    its column (index i) and its row (index H + j); the column copy is masked so the softmax counts it once."""
    col = torch.eye(height, dtype=torch.bool, device=device).unsqueeze(1)  # (H, 1, H)
    row = torch.zeros(height, 1, width, dtype=torch.bool, device=device)  # (H, 1, W)
    return torch.cat([col, row], dim=-1)


class CrissCrossAttention(Attention):
    """The core's score -> normalize -> aggregate, with the criss-cross layout of keys and values:
    query, keys (B, H, W, Ck), values (B, H, W, Cv) -> context (B, H, W, Cv), weights (B, H, W, H + W)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__(CrissCrossScore(), Softmax(), dropout)

    def attention_weights(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                          projected_keys: torch.Tensor | None = None,
                          bias: torch.Tensor | None = None) -> torch.Tensor:
        """The core's score and normalize, with the centre's column copy masked: (B, H, W, H + W)."""
        centre = centre_mask(query.size(1), query.size(2), query.device)  # (H, 1, H + W)
        return super().attention_weights(query, keys, combine_masks(mask, centre), projected_keys, bias)

    def aggregate(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Weighted sum along the column and the row: weights (B, H, W, H + W), values (B, H, W, Cv) ->
        (B, H, W, Cv)."""
        height = values.size(1)
        dropped = self.dropout(weights)
        # Column part: (B, W, H, H) @ (B, W, H, Cv) -> (B, W, H, Cv); row part: (B, H, W, W) @ (B, H, W, Cv).
        col = column_first(column_first(dropped[..., :height]) @ column_first(values))
        row = dropped[..., height:] @ values
        return col + row


@register_attention("criss_cross")
class CrissCross(nn.Module):
    """Recurrent criss-cross attention (RCCA): (B, C, H, W) -> (B, C, H, W), the same module ``recurrence``
    times. Query/key embeddings of C/8 channels (``rd_ratio``), values of C channels."""

    def __init__(self, channels: int, recurrence: int = 2, rd_ratio: float = 1 / 8, rd_channels: int | None = None,
                 rd_divisor: int = 1) -> None:
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence}")
        inter = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.recurrence = recurrence
        self.query = conv1x1(channels, inter)
        self.key = conv1x1(channels, inter, bias=False)  # a key bias adds q_i . b to a whole softmax row
        self.value = conv1x1(channels, channels)
        self.attention = CrissCrossAttention()
        self.gamma = nn.Parameter(torch.zeros(1))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One criss-cross pass."""
        q = self.query(x).permute(0, 2, 3, 1)  # (B, H, W, Ck)
        k = self.key(x).permute(0, 2, 3, 1)  # (B, H, W, Ck)
        v = self.value(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        y, _ = self.attention(q, k, v)  # (B, H, W, C)
        return x + self.gamma * y.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self.step(x)
        return x
