"""Spatial Pyramid Attention (SPA-Net).

Guo, Ma, Sansom, McGuire, Kalaani, Chen, Tang, Yang, Fu, 2020, "SPANet: Spatial Pyramid Attention Network for
Enhanced Image Recognition", ICME 2020, doi:10.1109/ICME46284.2020.9102906 (no arXiv version).

SE with a spatial pyramid squeeze: adaptive average pooling to 1x1, 2x2 and 4x4, flattened and concatenated
(21 C values), then a bias-free bottleneck 21 C -> C/r -> C and a sigmoid: 21 C^2 / r + C^2 / r parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..gate import ChannelMLP, GateAttention, reduced_channels
from ..registry import register_attention


@register_attention("spa")
class SpatialPyramidAttention(GateAttention):
    """SPA channel gate; recorded map: channel weights (B, C, 1, 1)."""

    def __init__(self, channels: int, pool_sizes: tuple[int, ...] = (1, 2, 4), rd_ratio: float = 1 / 16,
                 rd_channels: int | None = None, rd_divisor: int = 1, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        if not pool_sizes or any(s < 1 for s in pool_sizes):
            raise ValueError(f"pool_sizes must be positive ints, got {pool_sizes!r}")
        self.pool_sizes = tuple(pool_sizes)
        bins = sum(s * s for s in self.pool_sizes)
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.fc = ChannelMLP(bins * channels, rd, channels, act_layer=act_layer, bias=False)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        # adaptive pooling also upsamples maps smaller than a pyramid level (e.g. 1x1 -> 4x4 by repetition)
        pyramid = torch.cat([F.adaptive_avg_pool2d(x, s).flatten(1) for s in self.pool_sizes], dim=1)  # (B, 21C)
        return self.fc(pyramid[:, :, None, None])  # (B, C, 1, 1)
