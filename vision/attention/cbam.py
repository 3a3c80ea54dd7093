"""Convolutional Block Attention Module (CBAM): channel gate, spatial gate, and both in sequence.

Woo, Park, Lee, Kweon, 2018, "CBAM: Convolutional Block Attention Module", ECCV 2018, arXiv:1807.06521.

channel: Mc = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))), one MLP C -> C/r -> C shared by both pooled descriptors
(2 C^2 / r weights + C/r + C biases); spatial: Ms = sigmoid(BN(conv_kxk([mean_c(x); max_c(x)]))), k = 7, conv
without bias followed by batch norm as in the authors' code (2 k^2 + 2 parameters); CBAM: x' = Mc * x, then
x'' = Ms * x'.
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import ChannelMLP, GateAttention, check_channels, reduced_channels
from ..registry import register_attention


@register_attention("cbam_channel")
class ChannelGate(GateAttention):
    """CBAM's channel attention; recorded map: channel weights (B, C, 1, 1)."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 act_layer: str | type[nn.Module] = "relu", gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        self.fc = ChannelMLP(channels, reduced_channels(channels, rd_ratio, rd_channels, rd_divisor),
                             act_layer=act_layer)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        # the same MLP on both descriptors: (B, C, 1, 1) each
        return self.fc(x.mean((2, 3), keepdim=True)) + self.fc(x.amax((2, 3), keepdim=True))


@register_attention("cbam_spatial")
class SpatialGate(GateAttention):
    """CBAM's spatial attention; recorded map: (B, 1, H, W). ``channels`` is checked but not needed."""

    def __init__(self, channels: int, kernel_size: int = 7, norm: bool = True,
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not norm)
        self.norm = nn.BatchNorm2d(1) if norm else nn.Identity()

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return self.norm(self.conv(pooled))  # (B, 1, H, W)


@register_attention("cbam")
class CBAM(nn.Module):
    """Channel gate then spatial gate; each records its own map (``channel``: (B, C, 1, 1), ``spatial``:
    (B, 1, H, W)) under ``capture_attention``."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 kernel_size: int = 7, norm: bool = True, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__()
        self.channel = ChannelGate(channels, rd_ratio, rd_channels, rd_divisor, act_layer, gate_layer)
        self.spatial = SpatialGate(channels, kernel_size, norm, gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
