"""Residual Attention: the soft mask branch of an attention module, applied to a feature map.

Wang, Jiang, Qian, Yang, Li, Zhang, Wang, Tang, 2017, "Residual Attention Network for Image Classification",
CVPR 2017, arXiv:1704.06904.

The trunk is the input x itself; the mask branch M(x) is bottom-up top-down: ``depth`` times max-pool (3x3,
stride 2) + a residual unit, a skip connection (a residual unit) at each intermediate resolution, bilinear
upsampling back (adding the skips), then BN-ReLU-1x1 conv twice and a sigmoid. Attention residual learning:
H(x) = (1 + M(x)) * x. Residual units are pre-activation (BN-ReLU-conv3x3 twice + identity), sized for the
narrow feature maps of CIFAR networks instead of the paper's bottlenecks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..gate import ResidualGateAttention, check_channels, create_act
from ..registry import register_attention


class PreActUnit(nn.Module):
    """Pre-activation residual unit: ``x + conv(act(bn(conv(act(bn(x))))))``, 3x3 convolutions."""

    def __init__(self, channels: int, act_layer: str | type[nn.Module] = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), create_act(act_layer), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), create_act(act_layer), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_attention("residual_attention")
class ResidualAttentionMask(ResidualGateAttention):
    """``(1 + M(x)) * x`` with the hourglass mask branch M; recorded map: the soft mask (B, C, H, W)."""

    def __init__(self, channels: int, depth: int = 2, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        check_channels(depth, "depth")
        self.down = nn.ModuleList(PreActUnit(channels, act_layer) for _ in range(depth))
        self.skips = nn.ModuleList(PreActUnit(channels, act_layer) for _ in range(depth - 1))
        self.up = nn.ModuleList(PreActUnit(channels, act_layer) for _ in range(depth - 1))
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels), create_act(act_layer), nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels), create_act(act_layer), nn.Conv2d(channels, channels, 1),
        )

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        sizes, skips, y = [], [], x
        for i, down in enumerate(self.down):  # bottom-up: halve the resolution each step
            sizes.append(y.shape[-2:])
            y = down(F.max_pool2d(y, 3, stride=2, padding=1))
            if i < len(self.skips):
                skips.append(self.skips[i](y))
        for i in reversed(range(len(self.down))):  # top-down: back to each level's size, adding its skip
            y = F.interpolate(y, size=sizes[i], mode="bilinear", align_corners=False)
            if i > 0:
                y = self.up[i - 1](y + skips[i - 1])
        return self.head(y)  # (B, C, H, W)
