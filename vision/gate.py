"""The gate abstraction shared by all gating modules (SE, ECA, CBAM, BAM, scSE, GE, SK, SPA, FcaNet, GSoP,
Coordinate Attention, ...), expressed in the core's terms:

- score: a module-specific map from the input to gate logits, broadcastable to the input,
  e.g. (B, C, 1, 1) for channel gates, (B, 1, H, W) for spatial gates;
- normalize: ``gate_layer``, a core normalizer by name (``sigmoid``, ``hard_sigmoid``, ``tanh`` from
  ``seq2seq_attn.attention.build_normalizer``) or a module;
- aggregate: reweight the input, ``x * weights``.

The weights are recorded through the core's capture mechanism (``capture_attention``).
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import RecordsAttention, build_normalizer

#: the core normalizers that make sense as gates (elementwise squashing functions)
GATE_LAYERS = ("sigmoid", "hard_sigmoid", "tanh")


def create_gate(gate_layer: str | nn.Module = "sigmoid") -> nn.Module:
    """A normalizer mapping gate logits to weights: a core normalizer by name (sigmoid, hard_sigmoid, tanh;
    ``seq2seq_attn.attention.build_normalizer``) or a module.

    Raises:
        ValueError: a name that is not one of the gate normalizers, naming ``gate_layer``.
    """
    if isinstance(gate_layer, nn.Module):
        return gate_layer
    if gate_layer not in GATE_LAYERS:
        raise ValueError(f"unknown gate_layer {gate_layer!r}: expected one of {', '.join(GATE_LAYERS)}")
    return build_normalizer(gate_layer)


def create_act(act_layer: str | type[nn.Module] = "relu") -> nn.Module:
    """An activation by name (relu, gelu, silu, sigmoid, identity) or class, as timm's ``act_layer``."""
    if isinstance(act_layer, type):
        return act_layer()
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "sigmoid": nn.Sigmoid,
             "identity": nn.Identity, "leaky_relu": nn.LeakyReLU}
    if act_layer not in table:
        raise ValueError(f"unknown act_layer {act_layer!r}: expected one of {', '.join(table)}")
    return table[act_layer](inplace=True) if act_layer in ("relu", "silu", "swish", "leaky_relu") \
        else table[act_layer]()


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``v`` to a multiple of ``divisor`` (timm's convention for reduced channels)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class GateAttention(RecordsAttention):
    """Base class of gating modules: ``forward(x) = x * gate(gate_logits(x))``.

    Subclasses implement :meth:`gate_logits` (the score step). The recorded attention map is the gate
    weights, e.g. (B, C, 1, 1) channel weights or a (B, 1, H, W) spatial map.
    """

    def __init__(self, gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__()
        self.gate = create_gate(gate_layer)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(self.gate_logits(x))
        self.record(weights)
        return weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_weights(x)


class ResidualGateAttention(GateAttention):
    """A gate applied residually, ``x * (1 + weights)`` (BAM, Residual Attention's mask branch): the identity
    path is kept, so a gate near zero cannot erase the features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.gate_weights(x))


def check_channels(channels: int, name: str = "channels") -> int:
    """Validate a channel count (a positive int) with an error that names the argument."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{name} must be a positive int, got {channels!r}")
    return channels


def reduced_channels(channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                     rd_divisor: int = 1, min_channels: int = 1) -> int:
    """The hidden width of a bottleneck: ``rd_channels`` if given, else ``channels * rd_ratio`` rounded to a
    multiple of ``rd_divisor`` (at least ``min_channels``). ``rd_divisor=1`` is the papers' ``C / r``."""
    check_channels(channels)
    if rd_channels is not None:
        return check_channels(rd_channels, "rd_channels")
    if not rd_ratio > 0:
        raise ValueError(f"rd_ratio must be > 0, got {rd_ratio!r}")
    check_channels(rd_divisor, "rd_divisor")
    return max(min_channels, make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0))


class ChannelMLP(nn.Sequential):
    """The excitation bottleneck on pooled descriptors (B, C, 1, 1) -> (B, out, 1, 1), as 1x1 convolutions:
    ``fc(C -> hidden) [-> BN] -> act -> fc(hidden -> out)`` (SE, CBAM's shared MLP, SK's selector, ...).

    ``bias`` applies to both layers; with ``norm`` the first layer has no bias (BN would cancel it).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int | None = None,
                 act_layer: str | type[nn.Module] = "relu", bias: bool = True, norm: bool = False) -> None:
        out_channels = in_channels if out_channels is None else out_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden_channels, 1, bias=bias and not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(hidden_channels))
        layers += [create_act(act_layer), nn.Conv2d(hidden_channels, out_channels, 1, bias=bias)]
        super().__init__(*layers)


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
