"""Channel, spatial, and concurrent spatial-and-channel squeeze & excitation (cSE, sSE, scSE).

Roy, Navab, Wachinger, 2018, "Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional
Networks", MICCAI 2018, arXiv:1803.02579.

cSE: SE with reduction r = 2; sSE: q = sigmoid(conv1x1(x)), C -> 1, x * q (C + 1 parameters);
scSE: cSE(x) + sSE(x) (the paper's element-wise addition; ``combine="max"`` is the variant of the journal
version, Roy et al., 2019, IEEE TMI, "Recalibrating Fully Convolutional Networks With Spatial and Channel
'Squeeze and Excitation' Blocks").
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import GateAttention, check_channels
from ..registry import register_attention
from .se import SqueezeExcite


@register_attention("cse")
class ChannelSqueezeExcite(SqueezeExcite):
    """cSE: SE with the paper's reduction ratio 1/2."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 2, **kwargs) -> None:
        super().__init__(channels, rd_ratio=rd_ratio, **kwargs)


@register_attention("sse")
class SpatialSqueezeExcite(GateAttention):
    """sSE: a 1x1 convolution to one channel; recorded map: (B, 1, H, W)."""

    def __init__(self, channels: int, gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        self.conv = nn.Conv2d(check_channels(channels), 1, 1)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (B, 1, H, W)


@register_attention("scse")
class SpatialChannelSqueezeExcite(nn.Module):
    """scSE: both recalibrations of the same input, combined; each gate records its own map."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 2, rd_channels: int | None = None, rd_divisor: int = 1,
                 act_layer: str | type[nn.Module] = "relu", gate_layer: str | nn.Module = "sigmoid",
                 combine: str = "add") -> None:
        super().__init__()
        if combine not in ("add", "max"):
            raise ValueError(f"combine must be 'add' or 'max', got {combine!r}")
        self.combine = combine
        self.cse = ChannelSqueezeExcite(channels, rd_ratio=rd_ratio, rd_channels=rd_channels, rd_divisor=rd_divisor,
                                        act_layer=act_layer, gate_layer=gate_layer)
        self.sse = SpatialSqueezeExcite(channels, gate_layer=gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, spatial = self.cse(x), self.sse(x)
        return channel + spatial if self.combine == "add" else torch.maximum(channel, spatial)
