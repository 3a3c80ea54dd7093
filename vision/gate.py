"""The gate abstraction of the vision gating modules (SE, ECA, CBAM, BAM, scSE, GE, SK, SPA, FcaNet, GSoP,
Coordinate Attention, ...). The shared part (the gate in the core's terms, the channel gates SE and ECA that
text models use too, the bottleneck and channel helpers) lives in :mod:`seq2seq_attn.layers.gates` and is
re-exported here; this module adds what only images use: the residual gate and conv-BN-act blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.layers.gates import (
    GATE_LAYERS,
    ChannelGate,
    ChannelMLP,
    GateAttention,
    check_channels,
    create_act,
    create_gate,
    make_divisible,
    reduced_channels,
)

__all__ = ["GATE_LAYERS", "ChannelGate", "ChannelMLP", "GateAttention", "ResidualGateAttention", "check_channels",
           "conv_norm_act", "create_act", "create_gate", "make_divisible", "reduced_channels"]


class ResidualGateAttention(GateAttention):
    """A gate applied residually, ``x * (1 + weights)`` (BAM, Residual Attention's mask branch): the identity
    path is kept, so a gate near zero cannot erase the features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.gate_weights(x))


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                  groups: int = 1, act_layer: str | type[nn.Module] | None = "relu") -> nn.Sequential:
    """``Conv2d(bias=False) -> BatchNorm2d [-> act]`` with "same" padding for odd kernels (dilation included)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=dilation * (kernel_size - 1) // 2,
                  dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if act_layer is not None:
        layers.append(create_act(act_layer))
    return nn.Sequential(*layers)
