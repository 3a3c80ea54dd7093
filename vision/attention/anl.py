"""Asymmetric non-local blocks: APNB and AFNB.

Zhu, Xu, Bai, Huang, Bai, 2019, "Asymmetric Non-local Neural Networks for Semantic Segmentation", ICCV,
arXiv:1908.07678.

Both are non-local attention whose keys and values are *sampled* by pyramid pooling (adaptive average
pooling to 1x1, 3x3, 6x6 and 8x8, S = 110 anchor positions), so the affinity is (HW, S) instead of (HW, HW):
the core's ``ScaledDotScore`` (scale ``key_channels^-1/2`` as in the reference code) + ``Softmax`` over the S
anchors.

- APNB (``apnb``, pyramid non-local): self-attention; query and key share one embedding (conv + ReLU), as in
  the reference code.
- AFNB (``afnb``, fusion non-local): queries from a high-level map, keys and values from a low-level map
  (``low_channels`` channels, any size since it is pooled). ``forward(high, low)`` is the paper's two-input
  form; the registered single-input form ``forward(x)`` fuses ``x`` with (the pyramid-pooled) itself.

The paper fuses the attention output ``Y`` with the input by concatenation and a 1x1 conv; as drop-in modules
both use the residual special case of that conv (identity on the input part): ``out = x + W(Y)``, with ``W``
zero-initialized (as the reference code) so the blocks start as the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, ScaledDotScore, Softmax

from ..registry import register_attention
from ._selfattn import SpatialSelfAttention, conv1x1, reduced_channels, zero_init_last

PYRAMID_SIZES = (1, 3, 6, 8)


class PyramidPool(nn.Module):
    """Sample anchors by adaptive average pooling at several sizes: (B, C, H, W) -> (B, C, S, 1),
    S = sum(size^2) (110 for the paper's sizes); the trailing 1 lets ``flatten_positions`` treat anchors as
    positions."""

    def __init__(self, sizes: tuple[int, ...] = PYRAMID_SIZES) -> None:
        super().__init__()
        if not sizes or min(sizes) < 1:
            raise ValueError(f"pyramid sizes must be positive ints, got {sizes!r}")
        self.pools = nn.ModuleList(nn.AdaptiveAvgPool2d(size) for size in sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(2) for pool in self.pools], dim=-1).unsqueeze(-1)  # (B, C, S, 1)


def _anl_parts(channels: int, key_channels: int, value_channels: int) -> tuple[Attention, nn.Module, nn.Module]:
    """The attention (scaled dot over anchors), the output projection ``W`` and the anchor pool."""
    out_proj = conv1x1(value_channels, channels)
    zero_init_last(out_proj)
    return Attention(ScaledDotScore(key_channels ** -0.5), Softmax()), out_proj, PyramidPool()


@register_attention("apnb")
class APNB(SpatialSelfAttention):
    """Asymmetric pyramid non-local block: (B, C, H, W) -> (B, C, H, W), affinity (B, HW, 110).

    Args:
        channels: input channels C.
        rd_ratio, rd_channels, rd_divisor: key (= query) embedding width (paper: C/2).
        value_ratio: value embedding width as a ratio of C (paper: 1/2).
        norm_layer: ``None`` or ``"bn"`` in the key/query embedding (the paper: conv + BN + ReLU).
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 2, rd_channels: int | None = None,
                 rd_divisor: int = 1, value_ratio: float = 1 / 2, norm_layer: str | None = None,
                 act_layer: str | type[nn.Module] = "relu") -> None:
        key_channels = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        value_channels = reduced_channels(channels, value_ratio)
        attention, out_proj, pool = _anl_parts(channels, key_channels, value_channels)
        key = conv1x1(channels, key_channels, norm_layer, act_layer)  # shared by queries and keys
        super().__init__(attention, key, key, conv1x1(channels, value_channels), out_proj, pool)


@register_attention("afnb")
class AFNB(SpatialSelfAttention):
    """Asymmetric fusion non-local block: ``forward(high, low=None)`` -> (B, C, H, W) like ``high``.

    Args:
        channels: channels C of the high-level map (queries, output).
        low_channels: channels of the low-level map (keys, values); default C.
        rd_ratio, rd_channels, rd_divisor, value_ratio, norm_layer, act_layer: as :class:`APNB`.
    """

    def __init__(self, channels: int, low_channels: int | None = None, rd_ratio: float = 1 / 2,
                 rd_channels: int | None = None, rd_divisor: int = 1, value_ratio: float = 1 / 2,
                 norm_layer: str | None = None, act_layer: str | type[nn.Module] = "relu") -> None:
        low_channels = low_channels or channels
        key_channels = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        value_channels = reduced_channels(channels, value_ratio)
        attention, out_proj, pool = _anl_parts(channels, key_channels, value_channels)
        super().__init__(attention, conv1x1(channels, key_channels, norm_layer, act_layer),
                         conv1x1(low_channels, key_channels, norm_layer, act_layer),
                         conv1x1(low_channels, value_channels), out_proj, pool)

    def forward(self, x: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse the low-level map ``low`` (B, C_low, H', W') into ``x`` (B, C, H, W); ``low=None`` uses ``x``."""
        return super().forward(x, low)
