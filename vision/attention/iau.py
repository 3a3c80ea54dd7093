"""Interaction-aggregation-update (IAU) block for clips (B, T, C, H, W).

Hou, Ma, Chang, Gu, Shan, Chen, 2020, "IAUnet: Global Context-Aware Feature Learning for Person
Re-Identification", IEEE TNNLS, arXiv:2009.01035; checked against the authors' code (``IAU3D.py``,
``STIAU.py`` of github.com/blue-blue272/ImgReID-IAnet). Each part interacts (scores between nodes), aggregates
(weights @ nodes) and updates (a residual), in the core's terms ``Attention(score, Softmax())``:

1. CIAU, the channel part: the nodes are the T·C channel maps (each a vector over the H·W positions) of all
   frames; ``f = softmax(g gᵀ)`` (:class:`~seq2seq_attn.attention.DotScore`, unscaled as in the authors' code),
   ``y = f g``, then ``x + BN(W_1 y)`` (1×1 conv; BN's scale starts at zero, so the part starts as the identity).
2. STIAU, the spatial-temporal part: N part maps per frame ``a = sigmoid(BN(conv_1x1(x)))`` (B, T, N, H, W)
   pool N part features per frame (``a @ x``, reduced to C/2 channels by a shared 1×1 conv ``g``, as is the
   global node ``u``, the mean of x over frames and positions). Interaction: ``e_ij = w·|x_i - x_j|``
   (:class:`RelationScore`), softmax over the allowed neighbours: the other parts of the same frame (spatial)
   and the same part in the other frames (temporal); aggregation ``W x``; update
   ``s = ReLU(BN(W_u [x, W x]))``. The parts' mean per frame, with ``u``, goes through ``BN(W_2 ·)`` (scale
   starting at zero) and is added to every position of its frame.

The authors' relation layer also reads ``u`` (``conv([|x_i - x_j|, u])``); that term is the same for every
neighbour j of a node, so it cancels in the softmax and is left out here. ``temporal=False`` keeps every
interaction inside its frame (CIAU over each frame's channels, STIAU spatial only, ``u`` per frame): the
block then never mixes frames (the ablation).
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, DotScore, Score, Softmax


class RelationScore(Score):
    """``e_ij = w·|q_i - k_j| + b`` (IAUnet's interaction, a 1×1 conv on absolute differences): query (..., Tq, D),
    keys (..., Tk, D) -> (..., Tq, Tk)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.relation = nn.Linear(dim, 1)

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        diff = (query.unsqueeze(-2) - projected_keys.unsqueeze(-3)).abs()  # (..., Tq, Tk, D)
        return self.relation(diff).squeeze(-1)


def neighbour_mask(frames: int, parts: int, temporal: bool = True, device: torch.device | None = None
                   ) -> torch.Tensor:
    """(T·N, T·N) bool, True = not a neighbour: node ``(t, n)`` interacts with ``(t, n')``, ``n' != n``
    (spatial) and, when ``temporal``, with ``(t', n)``, ``t' != t`` (temporal), as in the authors' ``W_init``."""
    t = torch.arange(frames, device=device).repeat_interleave(parts)
    n = torch.arange(parts, device=device).repeat(frames)
    same_t, same_n = t[:, None] == t[None], n[:, None] == n[None]
    allowed = (same_t & ~same_n) | ((~same_t & same_n) if temporal else torch.zeros_like(same_t))
    return ~allowed


def _zero_bn(module: nn.BatchNorm2d | nn.BatchNorm1d) -> nn.Module:
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


class ChannelIAU(nn.Module):
    """CIAU (see the module doc): (B, T, C, H, W) -> the same shape; records the (B, T·C, T·C) affinity (or
    (B·T, C, C) per frame when ``temporal=False``) through its core ``Attention``."""

    def __init__(self, channels: int, temporal: bool = True) -> None:
        super().__init__()
        self.temporal = temporal
        self.attention = Attention(DotScore(), Softmax())
        self.out = nn.Sequential(nn.Conv2d(channels, channels, 1), _zero_bn(nn.BatchNorm2d(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        nodes = x.reshape(b, t * c, h * w) if self.temporal else x.reshape(b * t, c, h * w)
        y, _ = self.attention(nodes, nodes)  # (B, TC, HW) or (BT, C, HW)
        return x + self.out(y.reshape(b * t, c, h, w)).view(b, t, c, h, w)


class SpatialTemporalIAU(nn.Module):
    """STIAU (see the module doc): (B, T, C, H, W) -> the same shape; records the (B, T·N, T·N) interaction
    weights through its core ``Attention``."""

    def __init__(self, channels: int, parts: int = 4, temporal: bool = True) -> None:
        super().__init__()
        if parts < 2:
            raise ValueError(f"parts must be >= 2 (spatial interactions are between parts), got {parts}")
        inner = max(channels // 2, 1)
        self.parts, self.temporal = parts, temporal
        self.part_maps = nn.Sequential(nn.Conv2d(channels, parts, 1), nn.BatchNorm2d(parts))
        self.reduce = nn.Linear(channels, inner)  # g: the authors' shared 1x1 conv
        self.attention = Attention(RelationScore(inner), Softmax())
        self.update = nn.Sequential(nn.Linear(2 * inner, inner), nn.BatchNorm1d(inner), nn.ReLU(inplace=True))
        self.out = nn.Sequential(nn.Conv2d(2 * inner, channels, 1), _zero_bn(nn.BatchNorm2d(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        frames = x.reshape(b * t, c, h * w)
        a = torch.sigmoid(self.part_maps(x.reshape(b * t, c, h, w))).flatten(2)  # (BT, N, HW)
        parts = self.reduce((a @ frames.transpose(1, 2)).view(b, t * self.parts, c))  # (B, TN, C')
        if self.temporal:
            u = self.reduce(x.mean((1, 3, 4)))[:, None].expand(b, t, -1)  # (B, T, C'): one global node
        else:
            u = self.reduce(x.mean((3, 4)))  # (B, T, C'): a node per frame
        mask = neighbour_mask(t, self.parts, self.temporal, x.device)
        gathered, _ = self.attention(parts, parts, mask=mask)  # (B, TN, C')
        s = self.update(torch.cat([parts, gathered], -1).flatten(0, 1)).view(b, t, self.parts, -1)
        y = torch.cat([s.mean(2), u], -1).reshape(b * t, -1, 1, 1)  # (BT, 2C', 1, 1)
        return x + self.out(y).view(b, t, c, 1, 1)


class IAUBlock(nn.Module):
    """The IAU block: CIAU then STIAU (the authors' order), either part optional. (B, T, C, H, W) -> same.

    Args:
        channels: C; parts: N part maps per frame (the authors: 4); temporal: False keeps every interaction
            inside its frame; channel, spatial_temporal: which parts to use.

    Raises:
        ValueError: neither part, or ``parts < 2``.
    """

    def __init__(self, channels: int, parts: int = 4, temporal: bool = True, channel: bool = True,
                 spatial_temporal: bool = True) -> None:
        super().__init__()
        if not (channel or spatial_temporal):
            raise ValueError("an IAU block needs its channel part, its spatial-temporal part or both")
        self.ciau = ChannelIAU(channels, temporal) if channel else nn.Identity()
        self.stiau = SpatialTemporalIAU(channels, parts, temporal) if spatial_temporal else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"IAU expects (B, T, C, H, W), got {tuple(x.shape)}")
        return self.stiau(self.ciau(x))
