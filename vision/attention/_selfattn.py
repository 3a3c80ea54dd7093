"""Pieces shared by the self-attention modules (Non-local, DA-Net, SAGAN, CC-Net, ANL, OCR, A2, GC).

All of them run the core's three steps on the positions of a feature map:

1. score:     ``seq2seq_attn.attention.Score`` (dot products, or a paper-specific score written as a subclass);
2. normalize: a core normalizer (softmax, or ``count`` for Non-local's ``1/N``);
3. aggregate: ``weights @ values`` in the core's :class:`~seq2seq_attn.attention.Attention`,

on sequences made by :func:`flatten_positions`: (B, C, H, W) -> (B, H*W, C). The core ``Attention`` records
its weights, so ``capture_attention`` returns the affinity matrix of every module.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq_attn.attention import Attention, Score, Softmax

from ..gate import create_act, reduced_channels  # noqa: F401  (re-exported for the self-attention modules)


def flatten_positions(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C): one row per position, as the core's sequences."""
    return x.flatten(2).transpose(1, 2)


def unflatten_positions(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), height, width)


def create_norm(norm_layer: str | None, channels: int) -> nn.Module:
    """``None`` (no normalization, the default: it keeps batch-1 1x1 inputs valid in training) or ``"bn"``."""
    if norm_layer is None or norm_layer == "none":
        return nn.Identity()
    if norm_layer in ("bn", "batchnorm"):
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm_layer {norm_layer!r}: expected None or 'bn'")


def conv1x1(in_channels: int, out_channels: int, norm_layer: str | None = None,
            act_layer: str | type[nn.Module] | None = None, bias: bool = True) -> nn.Sequential:
    """1x1 convolution (+ norm) (+ activation): the embeddings theta/phi/g of the non-local family."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, bias=bias and norm_layer in (None, "none"))]
    norm = create_norm(norm_layer, out_channels)
    if not isinstance(norm, nn.Identity):
        layers.append(norm)
    if act_layer is not None:
        layers.append(create_act(act_layer))
    return nn.Sequential(*layers)


def zero_init_last(module: nn.Module) -> None:
    """Zero the last affine layer of an output projection so that ``x + out(y)`` starts as the identity
    (Non-local's BN gamma = 0, GCNet's ``last_zero_init``)."""
    last = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    if not last:
        raise ValueError("zero_init_last: no conv, linear or batch-norm layer to zero")
    nn.init.zeros_(last[-1].weight)
    if last[-1].bias is not None:
        nn.init.zeros_(last[-1].bias)


class ProvidedScore(Score):
    """Scores that are given rather than computed: the "query" passed to ``Attention`` already holds the
    scores (..., Tq, Tk), e.g. OCR's coarse class logits over positions or A2's attention maps.

    The keys only fix Tk, which is checked.
    """

    def score(self, query: torch.Tensor, projected_keys: torch.Tensor) -> torch.Tensor:
        if query.size(-1) != projected_keys.size(-2):
            raise ValueError(f"ProvidedScore: {query.size(-1)} scores per row but {projected_keys.size(-2)} keys")
        return query  # (..., Tq, Tk)


class SpatialGather(nn.Module):
    """Soft-region pooling: (B, C, H, W) features, (B, K, H, W) score maps -> (B, K, C).

    Each of the K maps pools the features with a softmax over positions of its scores (``ProvidedScore`` +
    ``Softmax`` in the core ``Attention``; weights (B, K, HW)): OCR's object region representations (Yuan et al.,
    2020) and A^2's gather step ``G = A softmax(B)^T`` (Chen et al., 2018).
    """

    def __init__(self) -> None:
        super().__init__()
        self.attention = Attention(ProvidedScore(), Softmax())

    def forward(self, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        feats = flatten_positions(x)  # (B, HW, C)
        pooled, _ = self.attention(maps.flatten(2), feats, feats)  # (B, K, C); weights (B, K, HW)
        return pooled


class SpatialSelfAttention(nn.Module):
    """Self-attention over the positions of a feature map, the common shape of the non-local family::

        q = query(x), k = key_pool(key(source)), v = key_pool(value(source))      # 1x1 embeddings
        y, weights = Attention(score, normalize)(q, k, v)                         # (B, HW, HWk), rows = positions
        out = x + gamma * out_proj(y)                                             # residual

    ``source`` is ``x`` (self-attention) or another feature map (ANL's AFNB). ``gamma`` is a learned scalar
    initialized to 0 (DA-Net, SAGAN) or ``None`` (no scalar: the output projection is zero-initialized instead).
    Subclasses only build the pieces.
    """

    def __init__(self, attention: Attention, query: nn.Module, key: nn.Module, value: nn.Module,
                 out_proj: nn.Module, key_pool: nn.Module | None = None, learn_gamma: bool = False) -> None:
        super().__init__()
        self.query = query
        self.key = key
        self.value = value
        self.key_pool = key_pool if key_pool is not None else nn.Identity()
        self.attention = attention
        self.out_proj = out_proj
        self.gamma = nn.Parameter(torch.zeros(1)) if learn_gamma else None

    def context(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """The attention output ``out_proj(y)`` before the residual, (B, C, H, W)."""
        source = x if source is None else source
        height, width = x.shape[-2:]
        q = flatten_positions(self.query(x))  # (B, HW, Ck)
        k = flatten_positions(self.key_pool(self.key(source)))  # (B, HWk, Ck)
        v = flatten_positions(self.key_pool(self.value(source)))  # (B, HWk, Cv)
        y, _ = self.attention(q, k, v)  # (B, HW, Cv)
        return self.out_proj(unflatten_positions(y, height, width))  # (B, C, H, W)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        out = self.context(x, source)
        return x + (out if self.gamma is None else self.gamma * out)
