"""Non-local block.

Wang, Girshick, Gupta, He, 2018, "Non-local Neural Networks", CVPR, arXiv:1711.07971.

``z_i = W_z y_i + x_i``, ``y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)`` with four pairwise functions ``f``:

- ``embedded_gaussian`` (registered as ``non_local``): ``exp(theta(x_i)^T phi(x_j))``, ``C = sum_j f``, i.e. a
  softmax over positions of dot products of 1x1 embeddings: the core's ``DotScore`` + ``Softmax``;
- ``gaussian`` (``non_local_gaussian``): ``exp(x_i^T x_j)`` on the input itself, no theta/phi embeddings;
- ``dot`` (``non_local_dot``): ``theta(x_i)^T phi(x_j)`` with ``C = N`` (number of positions);
- ``concat`` (``non_local_concat``): ``ReLU(w^T [theta(x_i); phi(x_j)])`` with ``C = N`` (:class:`ConcatReLUScore`).

Defaults follow the paper: embeddings of half the channels (``rd_ratio=1/2``), ``W_z`` initialized to zero so
the block starts as the identity (the paper zero-initializes the BN scale after ``W_z``; without BN, the default
here, as in mmcv's ``NonLocal2d``, ``W_z`` itself is zeroed), optional max-pool subsampling of phi and g.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import Attention, CountNormalize, DotScore, ScaledDotScore, Score, Softmax

from ..registry import register_attention
from ._selfattn import SpatialSelfAttention, conv1x1, reduced_channels, zero_init_last

MODES = ("embedded_gaussian", "gaussian", "dot", "concat")


class ConcatReLUScore(Score):
    """``ReLU(w^T [q_i; k_j])`` (Non-local "concatenation"); ``w = [w_q; w_k]`` splits into a query part and a
    key part, so the key side is projected once and the scores are a broadcast sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(dim, 1, bias=False)
        self.key_proj = nn.Linear(dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (..., Tk, 1)

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        return F.relu(self.query_proj(query) + projected_keys.transpose(-2, -1))  # (..., Tq, Tk)


def _pairwise(mode: str, dim: int, use_scale: bool) -> Attention:
    """The score and normalizer of each pairwise function."""
    if mode in ("embedded_gaussian", "gaussian"):
        score = ScaledDotScore(1.0 / math.sqrt(dim)) if use_scale else DotScore()
        return Attention(score, Softmax())
    if mode == "dot":
        return Attention(DotScore(), CountNormalize())
    if mode == "concat":
        return Attention(ConcatReLUScore(dim), CountNormalize())
    raise ValueError(f"unknown non-local mode {mode!r}: expected one of {', '.join(MODES)}")


@register_attention("non_local")
class NonLocal(SpatialSelfAttention):
    """Non-local block (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: input channels C.
        mode: pairwise function, one of :data:`MODES`.
        rd_ratio, rd_channels, rd_divisor: width of the theta/phi/g embeddings (default C/2).
        sub_sample: 2x2 max-pool phi and g (the paper's cheaper variant; keys = ceil(H/2) * ceil(W/2)).
        use_scale: divide the dot products by sqrt(width) (mmcv's option; the paper does not).
        norm_layer: ``None`` or ``"bn"`` after ``W_z`` (the paper uses BN; then its scale is zeroed).
    """

    def __init__(self, channels: int, mode: str = "embedded_gaussian", rd_ratio: float = 1 / 2,
                 rd_channels: int | None = None, rd_divisor: int = 1, sub_sample: bool = False,
                 use_scale: bool = False, norm_layer: str | None = None) -> None:
        inter = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        if mode == "gaussian":
            # No embeddings: f(x_i, x_j) = exp(x_i^T x_j) on the input itself.
            query, key, dim = nn.Identity(), nn.Identity(), channels
        else:
            # Under a softmax a key bias only adds q_i . b to all scores of row i, which cancels: none there.
            key = conv1x1(channels, inter, bias=mode != "embedded_gaussian")
            query, dim = conv1x1(channels, inter), inter
        out_proj = conv1x1(inter, channels, norm_layer)
        zero_init_last(out_proj)
        pool = nn.MaxPool2d(2, ceil_mode=True) if sub_sample else None
        super().__init__(_pairwise(mode, dim, use_scale), query, key, conv1x1(channels, inter), out_proj, pool)
        self.mode = mode


for _mode in MODES[1:]:
    register_attention(f"non_local_{_mode}")(partial(NonLocal, mode=_mode))
