"""Bottleneck Attention Module (BAM).

Park, Woo, Lee, Kweon, 2018, "BAM: Bottleneck Attention Module", BMVC 2018, arXiv:1807.06514.

M(F) = sigmoid(Mc(F) + Ms(F)) broadcast to (B, C, H, W), and F' = F + F * M(F) (a residual gate), with
Mc(F) = BN(MLP(avgpool(F))), MLP: C -> C/r -> C (hidden BN + ReLU, as in the authors' code), and
Ms(F) = BN(conv1x1(conv3x3_d(conv3x3_d(conv1x1(F))))), C -> C/r -> ... -> 1, dilation d = 4, BN + ReLU after
the inner convolutions. r = 16. Convolutions followed by BN have no bias (BN would cancel it).
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import ChannelMLP, ResidualGateAttention, conv_norm_act, reduced_channels
from ..registry import register_attention


@register_attention("bam")
class BottleneckAttention(ResidualGateAttention):
    """BAM: ``x * (1 + sigmoid(Mc(x) + Ms(x)))``; recorded map: the 3-D attention (B, C, H, W).

    The batch norms make training-mode forward passes need more than one value per channel (batch > 1).
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 dilation: int = 4, num_dilated: int = 2, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.channel = nn.Sequential(ChannelMLP(channels, rd, act_layer=act_layer, bias=False, norm=True),
                                     nn.BatchNorm2d(channels))
        self.spatial = nn.Sequential(
            conv_norm_act(channels, rd, 1, act_layer=act_layer),
            *[conv_norm_act(rd, rd, 3, dilation=dilation, act_layer=act_layer) for _ in range(num_dilated)],
            conv_norm_act(rd, 1, 1, act_layer=None),
        )

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        mc = self.channel(x.mean((2, 3), keepdim=True))  # (B, C, 1, 1)
        ms = self.spatial(x)  # (B, 1, H, W)
        return mc + ms  # (B, C, H, W)
