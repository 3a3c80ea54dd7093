"""Coordinate Attention.

Hou, Zhou, Feng, 2021, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021, arXiv:2103.02907.

Pool along each axis separately: z_h = mean_w(x) (B, C, H, 1) and z_w = mean_h(x) (B, C, 1, W); concatenate along
the spatial axis, 1x1 conv C -> m (m = max(8, C / 32)) + BN + h-swish; split back, 1x1 conv m -> C for each
direction, sigmoid; y = x * g_h * g_w. Parameters: C m + 2 m + 2 (m C + C).
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import GateAttention, conv_norm_act, reduced_channels
from ..registry import register_attention


@register_attention("coord")
class CoordinateAttention(GateAttention):
    """Coordinate attention; the recorded map is the product of both direction gates, (B, C, H, W)."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 32, rd_channels: int | None = None, rd_divisor: int = 1,
                 min_rd_channels: int = 8, act_layer: str | type[nn.Module] = nn.Hardswish,
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        mid = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor, min_channels=min_rd_channels)
        self.reduce = conv_norm_act(channels, mid, 1, act_layer=act_layer)
        self.conv_h = nn.Conv2d(mid, channels, 1)
        self.conv_w = nn.Conv2d(mid, channels, 1)

    def gate_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the two direction gates: (B, C, H, 1) and (B, C, 1, W)."""
        h, w = x.shape[-2:]
        z_h = x.mean(3, keepdim=True)  # (B, C, H, 1)
        z_w = x.mean(2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.reduce(torch.cat([z_h, z_w], dim=2))  # (B, m, H + W, 1): one shared transform for both axes
        y_h, y_w = y.split([h, w], dim=2)
        return self.conv_h(y_h), self.conv_w(y_w.transpose(2, 3))

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        logits_h, logits_w = self.gate_logits(x)
        weights = self.gate(logits_h) * self.gate(logits_w)  # (B, C, H, W)
        self.record(weights)
        return weights
