"""Squeeze-and-Excitation (SE).

Hu, Shen, Albanie, Sun, Wu, 2018, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

squeeze: global average pooling z = mean_hw(x); excite: s = sigmoid(W2 relu(W1 z)), W1: C -> C/r, W2: C/r -> C;
scale: x * s. Parameters: 2 C^2 / r weights plus C/r + C biases.
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import ChannelMLP, GateAttention, reduced_channels
from ..registry import register_attention


@register_attention("se")
class SqueezeExcite(GateAttention):
    """SE channel gate: ``x * sigmoid(MLP(avgpool(x)))``; recorded map: channel weights (B, C, 1, 1)."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 act_layer: str | type[nn.Module] = "relu", gate_layer: str | nn.Module = "sigmoid",
                 bias: bool = True) -> None:
        super().__init__(gate_layer)
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.fc = ChannelMLP(channels, rd, act_layer=act_layer, bias=bias)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3), keepdim=True))  # (B, C, 1, 1)
