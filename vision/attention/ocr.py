"""Object-contextual representations (OCR).

Yuan, Chen, Wang, 2020, "Object-Contextual Representations for Semantic Segmentation", ECCV,
arXiv:1909.11065.

Two attentions, both through the core's ``Attention``:

1. soft object regions (:class:`~vision.attention._selfattn.SpatialGather`): each of the K classes pools the
   pixel features with a softmax over positions of its coarse logits. The scores are *given* (the coarse
   segmentation), so the score step is :class:`~vision.attention._selfattn.ProvidedScore`; weights (B, K, HW).
2. pixel-region relation: each pixel attends to the K region representations, ``ScaledDotScore`` on
   embeddings ``phi(x_i)``, ``psi(f_k)`` + ``Softmax`` over K; values ``delta(f_k)``; weights (B, HW, K).

``forward(x, coarse_logits)`` takes the coarse class logits (B, K, H, W) of the paper's auxiliary head. The
registered single-input form ``forward(x)`` predicts them from ``x`` with its own 1x1 conv head
(``num_classes`` soft regions, trained end to end without region supervision).

The paper's augmented representation concatenates the object context ``y`` with ``x`` and applies a 1x1 conv;
as a drop-in module this uses the residual special case of that conv, ``out = x + W(y)``, with ``W``
zero-initialized so the module starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, ScaledDotScore, Softmax

from ..registry import register_attention
from ._selfattn import SpatialGather, conv1x1, flatten_positions, reduced_channels, unflatten_positions, zero_init_last


def _embedding(in_channels: int, out_channels: int, depth: int, norm_layer: str | None,
               act_layer: str | type[nn.Module]) -> nn.Sequential:
    """``depth`` x (1x1 conv + norm + act), the paper's phi/psi (depth 2) and delta (depth 1)."""
    layers = [conv1x1(in_channels if i == 0 else out_channels, out_channels, norm_layer, act_layer)
              for i in range(depth)]
    return nn.Sequential(*layers)


@register_attention("ocr")
class ObjectContext(nn.Module):
    """OCR module: ``forward(x, coarse_logits=None)`` (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: input channels C.
        num_classes: K, the number of soft object regions predicted by the built-in coarse head (used only
            when no ``coarse_logits`` are passed).
        rd_ratio, rd_channels, rd_divisor: key width of the pixel-region attention (paper: 256 for 512).
        norm_layer: ``None`` or ``"bn"`` in the embeddings (the paper: conv + BN + ReLU).
    """

    def __init__(self, channels: int, num_classes: int = 8, rd_ratio: float = 1 / 2, rd_channels: int | None = None,
                 rd_divisor: int = 1, norm_layer: str | None = None,
                 act_layer: str | type[nn.Module] = "relu") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        key_channels = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.coarse_head = nn.Conv2d(channels, num_classes, 1)
        self.gather = SpatialGather()
        self.pixel = _embedding(channels, key_channels, 2, norm_layer, act_layer)  # phi
        self.region = _embedding(channels, key_channels, 2, norm_layer, act_layer)  # psi
        self.down = _embedding(channels, key_channels, 1, norm_layer, act_layer)  # delta
        self.attention = Attention(ScaledDotScore(key_channels ** -0.5), Softmax())
        self.out_proj = conv1x1(key_channels, channels)  # W (rho and the fusion conv, residual form)
        zero_init_last(self.out_proj)

    def forward(self, x: torch.Tensor, coarse_logits: torch.Tensor | None = None) -> torch.Tensor:
        if coarse_logits is None:
            coarse_logits = self.coarse_head(x)  # (B, K, H, W)
        elif coarse_logits.dim() != 4 or coarse_logits.shape[0] != x.shape[0] \
                or coarse_logits.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"coarse_logits must be (B, K, H, W) = ({x.shape[0]}, K, {x.shape[2]}, {x.shape[3]}) "
                             f"like x, got {tuple(coarse_logits.shape)}")
        height, width = x.shape[-2:]
        regions = self.gather(x, coarse_logits)  # (B, K, C)
        regions = regions.transpose(1, 2).unsqueeze(-1)  # (B, C, K, 1): regions as a K x 1 map
        q = flatten_positions(self.pixel(x))  # (B, HW, Ck)
        k = flatten_positions(self.region(regions))  # (B, K, Ck)
        v = flatten_positions(self.down(regions))  # (B, K, Ck)
        y, _ = self.attention(q, k, v)  # (B, HW, Ck); weights (B, HW, K)
        return x + self.out_proj(unflatten_positions(y, height, width))
