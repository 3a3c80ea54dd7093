"""A^2 double attention block.

Chen, Kalantidis, Li, Yan, Feng, 2018, "A^2-Nets: Double Attention Networks", NeurIPS, arXiv:1810.11579.

From 1x1 convs of the input: features ``A = phi(X)`` (c_m channels), gathering maps ``B = theta(X)`` and
distribution maps ``V = rho(X)`` (c_n channels each). Two attention steps, both through the core's
``Attention`` with the scores given by the maps themselves (``ProvidedScore``):

1. gather: each of the c_n global descriptors pools ``A`` with a softmax over positions of its map ``B_j``:
   ``G = A softmax(B)^T``, weights (B, c_n, HW);
2. distribute: each position mixes the descriptors with a softmax over the c_n entries of its vector ``V_i``:
   ``Z_i = G softmax(V_i)``, weights (B, HW, c_n).

``Z`` is expanded back to C channels by a 1x1 conv and added to the input. That conv is zero-initialized here
(this implementation's choice, as Non-local's ``W_z``) so the block starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, Softmax

from ..registry import register_attention
from ._selfattn import (
    ProvidedScore,
    SpatialGather,
    conv1x1,
    flatten_positions,
    reduced_channels,
    unflatten_positions,
    zero_init_last,
)


@register_attention("a2")
class DoubleAttention(nn.Module):
    """A^2 block: (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: input channels C.
        rd_ratio, rd_channels, rd_divisor: c_m, the width of the features ``A`` (default C/4).
        num_descriptors: c_n, the number of global descriptors (default c_m).
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 4, rd_channels: int | None = None,
                 rd_divisor: int = 1, num_descriptors: int | None = None) -> None:
        super().__init__()
        c_m = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        c_n = num_descriptors or c_m
        self.features = conv1x1(channels, c_m)  # phi -> A
        self.gather_maps = conv1x1(channels, c_n)  # theta -> B
        self.distribute_maps = conv1x1(channels, c_n)  # rho -> V
        self.gather = SpatialGather()  # softmax over positions of each map B_j
        self.distribute = Attention(ProvidedScore(), Softmax())
        self.out_proj = conv1x1(c_m, channels)
        zero_init_last(self.out_proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        descriptors = self.gather(self.features(x), self.gather_maps(x))  # (B, c_n, c_m); weights (B, c_n, HW)
        distribute_scores = flatten_positions(self.distribute_maps(x))  # (B, HW, c_n)
        z, _ = self.distribute(distribute_scores, descriptors, descriptors)  # (B, HW, c_m)
        return x + self.out_proj(unflatten_positions(z, height, width))
