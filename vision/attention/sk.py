"""Selective Kernel (SK) convolution as an attention module.

Li, Wang, Hu, Yang, 2019, "Selective Kernel Networks", CVPR 2019, arXiv:1903.06586.

split: M branches U_m = ReLU(BN(conv_m(x))), 3x3 convolutions with dilation 1, 2, ... standing for kernels
3x3, 5x5, ... (the paper's dilated 3x3 for 5x5); fuse: s = avgpool(sum_m U_m), z = ReLU(BN(W s)) of width
d = max(C / r, L) with L = 32; select: a_m = softmax over branches of (A_m z), V = sum_m a_m * U_m.

Not a plain gate: the weights select among branches instead of scaling x. It is the core ``Attention`` with one
query per channel and the M branches as keys: the score is the fuse step (:class:`~vision.gate.ChannelMLP`,
given to the core as provided scores), the normalizer is the core's ``Softmax`` over the branch axis, and the
aggregation (the one step overridden) is the weighted sum of the branch feature maps. The recorded map is the
selection weights (B, C, M), summing to one over M.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, Softmax

from ..gate import ChannelMLP, check_channels, conv_norm_act, reduced_channels
from ..registry import register_attention
from ._selfattn import ProvidedScore


@register_attention("sk")
class SelectiveKernel(Attention):
    """SK unit mapping (B, C, H, W) to (B, C, H, W); ``kernel_sizes`` odd, realised as dilated 3x3 convs."""

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...] = (3, 5), groups: int = 1,
                 rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 min_rd_channels: int = 32, act_layer: str | type[nn.Module] = "relu") -> None:
        super().__init__(ProvidedScore(), Softmax())
        check_channels(channels)
        if len(kernel_sizes) < 2 or any(k < 3 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be at least two odd sizes >= 3, got {kernel_sizes!r}")
        self.branches = nn.ModuleList(
            conv_norm_act(channels, channels, 3, dilation=(k - 1) // 2, groups=groups, act_layer=act_layer)
            for k in kernel_sizes)
        d = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor, min_channels=min_rd_channels)
        # fuse (W, BN, ReLU) and select (the stacked A_m) in one bottleneck: (B, C, 1, 1) -> (B, M*C, 1, 1)
        self.select = ChannelMLP(channels, d, len(kernel_sizes) * channels, act_layer=act_layer, bias=False,
                                 norm=True)

    def gate_logits(self, u: torch.Tensor) -> torch.Tensor:
        b, m, c = u.shape[:3]  # u: (B, M, C, H, W)
        s = u.sum(1).mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return self.select(s).view(b, m, c).transpose(1, 2)  # (B, C, M): normalized over the branches

    def aggregate(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Selection weights (B, C, M) and branches (B, M, C, H, W) -> V = sum_m a_m * U_m (B, C, H, W)."""
        return torch.einsum("bmchw,bcm->bchw", values, self.dropout(weights).to(values.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        u = torch.stack([branch(x) for branch in self.branches], dim=1)  # (B, M, C, H, W)
        # one query per channel scoring the M branches (keys: any (B, M, *) tensor, it only fixes M)
        v, _ = super().forward(self.gate_logits(u), u.flatten(2), u)  # (B, C, H, W)
        return v
