"""Global context (GC) block.

Cao, Xu, Lin, Wei, Hu, 2019, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
ICCV workshops, arXiv:1904.11492.

1. Context modelling: one query-independent attention map shared by all positions, ``softmax_j(W_k x_j)``,
   pooling the input into a (B, C) context. In the core's terms: one learned query vector ``w_k`` scored
   against every position with ``DotScore`` (the paper's 1x1 conv ``W_k`` to one channel; its bias cancels in
   the softmax), ``Softmax`` over the H*W positions, values = the input.
2. Transform: bottleneck ``W_v2 ReLU(LN(W_v1 c))`` with ``C * rd_ratio`` channels (default 1/16, the paper's
   r = 16), at least 4 here: the paper's widths (C >= 256) never meet a layer norm over one channel.
3. Fusion: ``x + transform`` (``fusion="add"``, the paper's default) or ``x * sigmoid(transform)``
   (``fusion="mul"``, gate from ``gate_layer``). The last conv starts at zero (``last_zero_init``) for ``add``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seq2seq_attn.attention import Attention, DotScore, Softmax

from ..gate import create_act, create_gate
from ..registry import register_attention
from ._selfattn import flatten_positions, reduced_channels, zero_init_last

MIN_HIDDEN = 4


@register_attention("gc")
class GlobalContext(nn.Module):
    """GC block: (B, C, H, W) -> (B, C, H, W); the recorded map is the (B, 1, HW) context attention."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, act_layer: str | type[nn.Module] = "relu", fusion: str = "add",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__()
        if fusion not in ("add", "mul"):
            raise ValueError(f"unknown fusion {fusion!r}: expected 'add' or 'mul'")
        hidden = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        if rd_channels is None:
            # Layer norm over very few channels carries little (over one it outputs a constant, cutting the
            # block off from its input): small maps (C=16 in CIFAR ResNets) get at least MIN_HIDDEN channels.
            hidden = max(hidden, min(MIN_HIDDEN, channels))
        if hidden < 2:
            raise ValueError(f"GC transform needs >= 2 hidden channels for its layer norm, got {hidden}")
        # W_k as a learned query (kaiming fan-in init of a C -> 1 conv, as the reference code).
        self.context_query = nn.Parameter(torch.randn(1, 1, channels) * math.sqrt(2.0 / channels))
        self.attention = Attention(DotScore(), Softmax())
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.LayerNorm([hidden, 1, 1]),
            create_act(act_layer),
            nn.Conv2d(hidden, channels, 1),
        )
        self.fusion = fusion
        self.gate = create_gate(gate_layer) if fusion == "mul" else None
        if fusion == "add":
            zero_init_last(self.transform)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = flatten_positions(x)  # (B, HW, C)
        query = self.context_query.expand(x.size(0), -1, -1)  # (B, 1, C)
        context, _ = self.attention(query, feats, feats)  # (B, 1, C); weights (B, 1, HW)
        term = self.transform(context.transpose(1, 2).unsqueeze(-1))  # (B, C, 1, 1)
        if self.gate is None:
            return x + term
        return x * self.gate(term)
