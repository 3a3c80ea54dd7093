"""Gates in the core's terms, shared by image and text models: the gate abstraction of every vision gating
module (SE, ECA, CBAM, BAM, scSE, GE, SK, SPA, FcaNet, GSoP, Coordinate Attention, ...) and the two channel
gates that also run on the feature channels of text encoders.

- score: a module-specific map from the input to gate logits, broadcastable to the input, e.g. (B, C, 1, 1)
  for channel gates, (B, 1, H, W) for spatial gates;
- normalize: ``gate_layer``, a core normalizer by name (``sigmoid``, ``hard_sigmoid``, ``tanh`` from
  ``seq2seq_attn.attention.build_normalizer``) or a module;
- aggregate: reweight the input, ``x * weights``.

The weights are recorded through the core's capture mechanism (``capture_attention``).

Channel gates (:class:`ChannelGate`: :class:`SqueezeExcite`, :class:`EfficientChannelAttention`) squeeze the
input to one descriptor per channel, the mean over the positions, and take an optional padding mask: padded
positions do not count in the mean. An image is (B, C, H, W) without a mask; a text encoder's states
(B, T, C) are gated by :class:`SequenceChannelGate`, which views them as (B, C, T, 1) with the padding mask,
so that text and images run the same module.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..attention import RecordsAttention, build_normalizer

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


def channel_descriptor(x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The squeeze of a channel gate: the mean of ``x`` (B, C, *positions) over its positions, (B, C, 1, ...).
    ``pad_mask`` (B, *positions) bool, True = padding: those positions do not count (a row with no real
    position gives zeros). Without a mask: ``x.mean(positions)``, bit for bit."""
    dims = tuple(range(2, x.dim()))
    if pad_mask is None:
        return x.mean(dims, keepdim=True)
    if pad_mask.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"pad_mask {tuple(pad_mask.shape)} does not match the positions of x {tuple(x.shape)}")
    keep = ~pad_mask.unsqueeze(1)  # (B, 1, *positions)
    total = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dims, keepdim=True)
    count = keep.sum(dims, keepdim=True).clamp_min(1)
    return total / count.to(x.dtype)


class ChannelGate(GateAttention):
    """A channel gate: ``x * gate(excite(squeeze(x)))`` with the squeeze :func:`channel_descriptor` (padding
    excluded when ``pad_mask`` is given). Subclasses implement :meth:`excite`: descriptors (B, C, 1, 1) ->
    gate logits (B, C, 1, 1). Recorded map: the channel weights (B, C, 1, 1)."""

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def gate_logits(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c = x.shape[:2]
        z = channel_descriptor(x, pad_mask).reshape(b, c, 1, 1)  # (B, C, 1, 1)
        return self.excite(z).view(b, c, *([1] * (x.dim() - 2)))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, C, *positions), pad_mask (B, *positions) or None
        weights = self.gate(self.gate_logits(x, pad_mask))
        self.record(weights)
        return x * weights


class SqueezeExcite(ChannelGate):
    """Squeeze-and-Excitation (SE): Hu, Shen, Albanie, Sun, Wu, 2018, "Squeeze-and-Excitation Networks",
    CVPR 2018, arXiv:1709.01507.

    squeeze: z = mean over positions of x; excite: s = sigmoid(W2 relu(W1 z)), W1: C -> C/r, W2: C/r -> C;
    scale: x * s. Parameters: 2 C^2 / r weights plus C/r + C biases (``rd_ratio`` = 1/r; timm's names).
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 act_layer: str | type[nn.Module] = "relu", gate_layer: str | nn.Module = "sigmoid",
                 bias: bool = True) -> None:
        super().__init__(gate_layer)
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.fc = ChannelMLP(channels, rd, act_layer=act_layer, bias=bias)

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)  # (B, C, 1, 1)


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """ECA's psi(C) = |(log2 C + b) / gamma|_odd: truncate, then round even values up to the next odd."""
    check_channels(channels)
    t = int(abs((math.log2(channels) + beta) / gamma))
    return t if t % 2 else t + 1


class EfficientChannelAttention(ChannelGate):
    """Efficient Channel Attention (ECA), with the adaptive kernel size: Wang, Wu, Zhu, Li, Zuo, Hu, 2020,
    "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", CVPR 2020, arXiv:1910.03151.

    A 1-D convolution of size k across the channel descriptor replaces SE's bottleneck (local cross-channel
    interaction, no dimensionality reduction); ``kernel_size=None``: k = |log2(C) / gamma + b / gamma|_odd with
    gamma = 2, b = 1. Parameters: k. Raises ``ValueError`` for a kernel size that is not a positive odd int.
    """

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: float = 2, beta: float = 1,
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        k = eca_kernel_size(channels, gamma, beta) if kernel_size is None else kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {k!r}")
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        b, c = z.shape[:2]
        return self.conv(z.view(b, 1, c)).view(b, c, 1, 1)  # channels are the sequence the 1-D conv slides over


#: the channel gates a text model can put on its encoder's feature channels (``model.channel_gate``)
CHANNEL_GATES: dict[str, type[ChannelGate]] = {"se": SqueezeExcite, "eca": EfficientChannelAttention}


class SequenceChannelGate(nn.Module):
    """A channel gate (``se`` or ``eca``, the image modules themselves) on the feature channels of a sequence:
    states (B, T, C) and their padding mask (B, T) (True = padding) -> gated states (B, T, C). The states are
    viewed as a (B, C, T, 1) map, so the squeeze is the mean over the real tokens only: the output at the
    real tokens does not depend on how much padding follows them.

    Raises ``ValueError`` for an unknown gate name (and the gate's own errors for bad ``kwargs``).
    """

    def __init__(self, name: str, channels: int, **kwargs) -> None:
        super().__init__()
        if name not in CHANNEL_GATES:
            raise ValueError(f"unknown channel gate {name!r}: expected one of {', '.join(CHANNEL_GATES)}")
        self.gate = CHANNEL_GATES[name](channels, **kwargs)

    def forward(self, states: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = states.transpose(1, 2).unsqueeze(-1)  # (B, C, T, 1)
        mask = None if pad_mask is None else pad_mask.unsqueeze(-1)  # (B, T, 1)
        return self.gate(x, mask).squeeze(-1).transpose(1, 2)  # (B, T, C)
