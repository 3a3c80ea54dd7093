"""Global Second-order Pooling (GSoP) channel attention, the GSoP block of GSoP-Net1.

Gao, Xie, Wang, Li, 2019, "Global Second-order Pooling Convolutional Networks", CVPR 2019, arXiv:1811.12006.

reduce: 1x1 conv C -> d (d = 128 in the paper) + BN + ReLU; second-order pooling: the d x d covariance of the
reduced features over the H*W positions; row-wise convolution: each covariance row (one channel's
correlations) goes through its own linear map to 4 values (a grouped d x 1 convolution, after BN), ReLU;
then a 1x1 conv 4d -> C and a sigmoid give the channel weights.
Parameters: C d + 2 d (reduce) + 2 d (row BN) + 4 d^2 + 4 d (row conv) + 4 d C + C (expand).
"""

from __future__ import annotations

import torch
from torch import nn

from ..gate import GateAttention, check_channels, conv_norm_act, create_act, reduced_channels
from ..registry import register_attention


def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """(B, d, H, W) -> (B, d, d): covariance over positions, ``X (I - 1/M) X^T / M`` with M = H*W, in float32
    (second-order statistics lose too much in bf16/fp16)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        flat = x.flatten(2).float()  # (B, d, M)
        centered = flat - flat.mean(-1, keepdim=True)
        return centered @ centered.transpose(1, 2) / flat.size(-1)  # (B, d, d)


@register_attention("gsop")
class GlobalSecondOrderPooling(GateAttention):
    """GSoP channel gate; ``rd_channels`` is d (default min(128, C)); recorded map: (B, C, 1, 1)."""

    def __init__(self, channels: int, rd_ratio: float | None = None, rd_channels: int | None = None,
                 rd_divisor: int = 1, expansion: int = 4, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        check_channels(expansion, "expansion")
        if rd_ratio is None and rd_channels is None:
            d = min(128, channels)
        else:
            d = reduced_channels(channels, rd_ratio or 1 / 16, rd_channels, rd_divisor)
        self.reduce = conv_norm_act(channels, d, 1, act_layer=act_layer)
        self.row_norm = nn.BatchNorm2d(d)
        self.row_conv = nn.Conv2d(d, expansion * d, kernel_size=(d, 1), groups=d)  # row i -> `expansion` values
        self.act = create_act(act_layer)
        self.expand = nn.Conv2d(expansion * d, channels, 1)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        cov = covariance_pool(self.reduce(x)).to(x.dtype)  # (B, d, d)
        rows = self.row_norm(cov.unsqueeze(-1))  # (B, d, d, 1): channel i holds row i of the covariance
        return self.expand(self.act(self.row_conv(rows)))  # (B, 4d, 1, 1) -> (B, C, 1, 1)
