"""Efficient Channel Attention (ECA), with the adaptive kernel size.

Wang, Wu, Zhu, Li, Zuo, Hu, 2020, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020, arXiv:1910.03151.

A 1-D convolution of size k across the pooled channel descriptor replaces SE's bottleneck (local cross-channel
interaction, no dimensionality reduction); k = |log2(C) / gamma + b / gamma|_odd with gamma = 2, b = 1.
Parameters: k.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..gate import GateAttention, check_channels
from ..registry import register_attention


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """The paper's psi(C) = |(log2 C + b) / gamma|_odd: truncate, then round even values up to the next odd."""
    check_channels(channels)
    t = int(abs((math.log2(channels) + beta) / gamma))
    return t if t % 2 else t + 1


@register_attention("eca")
class EfficientChannelAttention(GateAttention):
    """ECA: ``x * sigmoid(conv1d_k(avgpool(x)))``; ``kernel_size=None`` picks k from ``channels``."""

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2, beta: float = 1,
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        k = eca_kernel_size(channels, gamma, beta) if kernel_size is None else kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {k!r}")
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = x.mean((2, 3)).unsqueeze(1)  # (B, 1, C): channels are the sequence the 1-D conv slides over
        return self.conv(y).view(b, c, 1, 1)  # (B, C, 1, 1)
