"""Gather-Excite (GE): parameter-free GE-theta-minus, parametric GE-theta and GE-theta-plus.

Hu, Shen, Albanie, Sun, Vedaldi, 2018, "Gather-Excite: Exploiting Feature Context in Convolutional Neural
Networks", NeurIPS 2018, arXiv:1810.12348.

gather: aggregate features over a spatial extent e (e = 0: global); excite: nearest-neighbour interpolation of
the gathered map back to (H, W), sigmoid, and multiply.
- GE-theta-minus: gather is average pooling (kernel 2e - 1, stride e), no parameters.
- GE-theta: gather is log2(e) depthwise 3x3 stride-2 convolutions, each followed by BN (ReLU between them):
  log2(e) * (9 C + 2 C) parameters. The paper's global parametric gather is a depthwise convolution over the
  whole map, which needs a fixed size: give ``feat_size`` with ``extent=0`` for it.
- GE-theta-plus: GE-theta followed by an SE-style bottleneck (1x1 conv C -> C/r -> C) before the gate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..gate import ChannelMLP, GateAttention, check_channels, conv_norm_act, create_act, reduced_channels
from ..registry import register_attention


class GatherExcite(GateAttention):
    """GE with ``extent`` e (0 = global); ``extra_params`` for the depthwise-convolution gather, ``use_mlp`` for
    the bottleneck. Recorded map: (B, C, 1, 1) for a global extent, else (B, C, H, W)."""

    def __init__(self, channels: int, extent: int = 0, extra_params: bool = False, use_mlp: bool = False,
                 feat_size: int | tuple[int, int] | None = None, rd_ratio: float = 1 / 16,
                 rd_channels: int | None = None, rd_divisor: int = 1, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        if isinstance(extent, bool) or not isinstance(extent, int) or extent < 0:
            raise ValueError(f"extent must be an int >= 0 (0 = global), got {extent!r}")
        self.extent = extent
        self.feat_size: tuple[int, ...] | None = None
        self.gather: nn.Module | None = None
        if extra_params:
            if extent == 0:
                if feat_size is None:
                    raise ValueError("a parametric global gather (extent=0) needs feat_size, the spatial size of "
                                     "its input; or give extent=2**k to gather with strided convolutions")
                self.feat_size = (feat_size, feat_size) if isinstance(feat_size, int) else tuple(feat_size)
                self.gather = nn.Sequential(  # one depthwise filter spanning the whole map: (B, C, 1, 1)
                    nn.Conv2d(channels, channels, self.feat_size, groups=channels, bias=False),
                    nn.BatchNorm2d(channels))
            else:
                if extent < 2 or extent & (extent - 1):
                    raise ValueError(f"a parametric gather needs extent to be a power of two >= 2, got {extent}")
                steps = int(math.log2(extent))
                layers: list[nn.Module] = []
                for i in range(steps):
                    layers += [*conv_norm_act(channels, channels, 3, stride=2, groups=channels, act_layer=None)]
                    if i < steps - 1:
                        layers.append(create_act(act_layer))
                self.gather = nn.Sequential(*layers)
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.mlp = ChannelMLP(channels, rd, act_layer=act_layer) if use_mlp else nn.Identity()

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.feat_size is not None and tuple(size) != self.feat_size:
            raise ValueError(f"GatherExcite was built for feat_size={self.feat_size}, got input of size {tuple(size)}")
        if self.gather is not None:
            gathered = self.gather(x)  # (B, C, ~H/e, ~W/e)
        elif self.extent == 0:
            gathered = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        else:
            k = 2 * self.extent - 1
            gathered = F.avg_pool2d(x, k, stride=self.extent, padding=k // 2, count_include_pad=False)
        logits = self.mlp(gathered)
        if logits.shape[-2:] != (1, 1):
            logits = F.interpolate(logits, size=size, mode="nearest")  # (B, C, H, W)
        return logits


@register_attention("ge_theta_minus")
def ge_theta_minus(channels: int, extent: int = 0, gate_layer: str | nn.Module = "sigmoid") -> GatherExcite:
    """GE-theta-minus: parameter-free, global average gather by default."""
    return GatherExcite(channels, extent=extent, gate_layer=gate_layer)


@register_attention("ge_theta")
def ge_theta(channels: int, extent: int = 8, **kwargs) -> GatherExcite:
    """GE-theta: depthwise-convolution gather (extent 8: three stride-2 convolutions)."""
    return GatherExcite(channels, extent=extent, extra_params=True, **kwargs)


@register_attention("ge_theta_plus")
def ge_theta_plus(channels: int, extent: int = 8, **kwargs) -> GatherExcite:
    """GE-theta-plus: depthwise-convolution gather and a bottleneck excite."""
    return GatherExcite(channels, extent=extent, extra_params=True, use_mlp=True, **kwargs)
