"""DA-Net position and channel attention.

Fu, Liu, Tian, Li, Bao, Fang, Lu, 2019, "Dual Attention Network for Scene Segmentation", CVPR,
arXiv:1809.02983.

- Position attention module (PAM, ``da_pam``): self-attention over the H*W positions; query/key 1x1
  embeddings of C/8 channels, value of C channels, softmax over positions, ``out = gamma * y + x``.
- Channel attention module (CAM, ``da_cam``): self-attention over the C channels, each channel a "token" of
  H*W values, no parameters but ``gamma``. The reference code scores ``max_j(E_ij) - E_ij`` with
  ``E = X X^T`` (:class:`ChannelContrastScore`) before the softmax.
- Dual attention (``danet``): both on the same input, outputs summed as in the paper's head;
  ``x + gamma_p * PAM(x) + gamma_c * CAM(x)`` (each branch's residual counted once).

Both gammas start at 0 (the paper's initialization), so the modules start as the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, DotScore, Score, Softmax

from ..registry import register_attention
from ._selfattn import SpatialSelfAttention, conv1x1, reduced_channels


class ChannelContrastScore(Score):
    """CAM's score ``max_j(E_ij) - E_ij`` with ``E_ij = x_i . x_j``: after the softmax, channels that are
    *less* similar get more weight (the reference implementation's ``energy_new``)."""

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        energy = query @ projected_keys.transpose(-2, -1)  # (B, C, C)
        return energy.amax(dim=-1, keepdim=True) - energy


@register_attention("da_pam")
class PositionAttention(SpatialSelfAttention):
    """PAM: (B, C, H, W) -> (B, C, H, W), affinity (B, HW, HW) with rows summing to one."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 8, rd_channels: int | None = None,
                 rd_divisor: int = 1) -> None:
        inter = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        # No key bias: it adds q_i . b to all scores of row i, which the softmax cancels.
        query, key = conv1x1(channels, inter), conv1x1(channels, inter, bias=False)
        super().__init__(Attention(DotScore(), Softmax()), query, key, conv1x1(channels, channels), nn.Identity(),
                         learn_gamma=True)


@register_attention("da_cam")
class ChannelAttention(nn.Module):
    """CAM: (B, C, H, W) -> (B, C, H, W), affinity (B, C, C) with rows summing to one."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = Attention(ChannelContrastScore(), Softmax())
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x.flatten(2)  # (B, C, HW): one row per channel
        y, _ = self.attention(feats, feats, feats)  # (B, C, HW)
        return x + self.gamma * y.view_as(x)


@register_attention("danet")
class DualAttention(nn.Module):
    """PAM and CAM in parallel on ``x``, summed: ``x + gamma_p * y_pam + gamma_c * y_cam``."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 8, rd_channels: int | None = None,
                 rd_divisor: int = 1) -> None:
        super().__init__()
        self.pam = PositionAttention(channels, rd_ratio, rd_channels, rd_divisor)
        self.cam = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pam(x) + self.cam(x) - x  # each branch returns x + its term
