"""FcaNet multi-spectral channel attention.

Qin, Zhang, Wu, Li, 2021, "FcaNet: Frequency Channel Attention Networks", ICCV 2021, arXiv:2012.11879.

Global average pooling is the lowest 2-D DCT component; FcaNet splits the channels into n groups and squeezes
group i with DCT basis (u_i, v_i) on a fixed dct_size x dct_size grid (inputs of another size are adaptively
average-pooled to it, as in the authors' code), then applies SE's bias-free bottleneck: 2 C^2 / r parameters
(the DCT filters are fixed buffers). Frequencies: the paper's "top-n" ranking on a 7x7 grid, scaled to the grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..gate import ChannelMLP, GateAttention, check_channels, reduced_channels
from ..registry import register_attention

# The 32 (u, v) frequencies of a 7x7 DCT ranked by the paper's single-frequency ImageNet study ("top32").
TOP_FREQUENCIES = (
    (0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0), (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3),
    (3, 5), (2, 2), (4, 6), (6, 3), (3, 3), (5, 3), (5, 5), (2, 1), (6, 1), (5, 2), (5, 4), (3, 2), (3, 1), (4, 1),
    (2, 3), (2, 0), (6, 5), (1, 3),
)


def dct_basis(freq: int, size: int) -> torch.Tensor:
    """1-D DCT-II basis ``cos(pi f (t + 1/2) / N)``, scaled by sqrt(2) for f > 0 (as in the authors' code)."""
    t = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * freq * (t + 0.5) / size)
    return basis if freq == 0 else basis * math.sqrt(2)


def dct_filters(channels: int, height: int, width: int, frequencies: list[tuple[int, int]]) -> torch.Tensor:
    """(C, H, W) filters: channel c uses frequency ``frequencies[c * n // C]`` (n equal groups when n | C)."""
    n = len(frequencies)
    filters = torch.empty(channels, height, width, dtype=torch.float64)
    for c in range(channels):
        u, v = frequencies[c * n // channels]
        filters[c] = dct_basis(u, height)[:, None] * dct_basis(v, width)[None, :]
    return filters.float()


@register_attention("fca")
class MultiSpectralAttention(GateAttention):
    """FcaNet's multi-spectral channel gate; recorded map: channel weights (B, C, 1, 1)."""

    def __init__(self, channels: int, dct_size: int = 7, num_freq: int = 16,
                 frequencies: list[tuple[int, int]] | None = None, rd_ratio: float = 1 / 16,
                 rd_channels: int | None = None, rd_divisor: int = 1, act_layer: str | type[nn.Module] = "relu",
                 gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__(gate_layer)
        check_channels(channels)
        check_channels(dct_size, "dct_size")
        if frequencies is None:
            if not 1 <= num_freq <= len(TOP_FREQUENCIES):
                raise ValueError(f"num_freq must be in 1..{len(TOP_FREQUENCIES)}, got {num_freq!r}")
            scale = max(1, dct_size // 7)  # the 7x7 ranking, mapped to a finer grid
            frequencies = [(u * scale, v * scale) for u, v in TOP_FREQUENCIES[:num_freq]]
        bad = [f for f in frequencies if not (0 <= f[0] < dct_size and 0 <= f[1] < dct_size)]
        if not frequencies or bad:
            raise ValueError(f"frequencies must be non-empty (u, v) pairs in [0, {dct_size}), got bad {bad!r}")
        self.dct_size = dct_size
        self.register_buffer("dct", dct_filters(channels, dct_size, dct_size, list(frequencies)), persistent=False)
        self.fc = ChannelMLP(channels, reduced_channels(channels, rd_ratio, rd_channels, rd_divisor),
                             act_layer=act_layer, bias=False)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.dct_size, self.dct_size):
            x = F.adaptive_avg_pool2d(x, self.dct_size)  # (B, C, n, n)
        y = (x * self.dct).sum((2, 3), keepdim=True)  # (B, C, 1, 1): one DCT coefficient per channel
        return self.fc(y)
