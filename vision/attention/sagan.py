"""SAGAN self-attention.

Zhang, Goodfellow, Metaxas, Odena, 2019, "Self-Attention Generative Adversarial Networks", ICML,
arXiv:1805.08318.

``s_ij = f(x_i)^T g(x_j)``, ``beta_j = softmax_i(s_ij)``, ``o_j = v(sum_i beta_ji h(x_i))``, ``y = gamma o + x``
with 1x1 convs f, g, h to C/8 channels (the paper's C-bar = C/8) and v back to C; ``gamma`` starts at 0.
Score/normalize/aggregate: the core's ``DotScore`` + ``Softmax`` over positions; affinity (B, HW, HW).
``spectral_norm=True`` wraps the four convs in spectral normalization, as the paper does in both networks.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from seq2seq_attn.attention import Attention, DotScore, Softmax

from ..registry import register_attention
from ._selfattn import SpatialSelfAttention, reduced_channels


@register_attention("sagan")
class SelfAttention(SpatialSelfAttention):
    """SAGAN self-attention: (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: input channels C.
        rd_ratio, rd_channels, rd_divisor: C-bar, the width of f, g and h (default C/8).
        spectral_norm: spectral normalization on the 1x1 convs.
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 8, rd_channels: int | None = None,
                 rd_divisor: int = 1, spectral_norm: bool = False) -> None:
        inter = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)

        def conv(cin: int, cout: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 1, bias=bias)
            return apply_spectral_norm(layer) if spectral_norm else layer

        # g (keys) without bias: it adds f(x_i) . b to all scores of row i, which the softmax cancels.
        super().__init__(Attention(DotScore(), Softmax()), conv(channels, inter), conv(channels, inter, bias=False),
                         conv(channels, inter), conv(inter, channels), learn_gamma=True)
