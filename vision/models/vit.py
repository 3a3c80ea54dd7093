"""Vision Transformer on the toolkit's shared Transformer encoder layers, and attention rollout.

- ViT: Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer, Heigold, Gelly,
  Uszkoreit and Houlsby, 2021, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
  ICLR, arXiv:2010.11929, section 3.1: the image is cut into P x P patches, each linearly embedded (here the
  usual stride-P convolution, the same linear map), a learned class token is prepended, learned position
  embeddings are added, L encoder layers (pre-LN, GELU MLP) follow, then a final LayerNorm and a linear head on
  the class token. The encoder layers are :class:`seq2seq_attn.layers.TransformerEncoderLayer` -- the very
  class of the translation Transformer and the Transformer classifier -- so a patch is a token of the same layer.
- Attention rollout: Abnar and Zuidema, 2020, "Quantifying Attention Flow in Transformers", ACL,
  arXiv:2005.00928: per layer the heads' weights are averaged, the identity added for the residual path and
  rows renormalized, ``A_hat = (A + I) / 2``; the layers are multiplied through,
  ``rollout = A_hat_L @ ... @ A_hat_1``; the class token's row over the patches is the map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.layers import TransformerEncoderLayer


def attention_rollout(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) of per-layer self-attention weights, first layer first.

    Args:
        weights: one tensor per layer, (B, H, S, S) per-head weights or (B, S, S) already averaged; rows sum
            to 1 (softmax weights).

    Returns:
        (B, S, S): ``A_hat_L @ ... @ A_hat_1`` with ``A_hat_l = (mean_heads(A_l) + I) / rowsum``; row i is how
        much of token i's final representation flows from each input token (rows sum to 1).

    Raises:
        ValueError: no layers, or weights that are not square (B, [H,] S, S) of one shape.
    """
    if not weights:
        raise ValueError("attention_rollout needs the weights of at least one layer")
    rollout = None
    for layer, w in enumerate(weights):
        if w.dim() == 4:
            w = w.float().mean(1)  # (B, S, S): heads averaged
        if w.dim() != 3 or w.shape[-1] != w.shape[-2] or (rollout is not None and w.shape != rollout.shape):
            raise ValueError(f"attention_rollout: layer {layer} weights of shape {tuple(w.shape)}; expected "
                             "(B, [H,] S, S) of one shape for every layer")
        a = w.float() + torch.eye(w.shape[-1], device=w.device)  # (B, S, S): the residual path
        a = a / a.sum(-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al., 2021) for images of a fixed size: (B, C, H, W) -> logits (B, num_classes).

    Args:
        num_classes: output classes; in_channels: image channels C.
        image_size: (H, W) the position embeddings are made for; ``patch`` must divide both.
        patch: patch side P (tokens: (H / P) * (W / P) patches + the class token).
        dim: token width D; depth: encoder layers L; heads: attention heads (D divisible by it).
        mlp_ratio: feed-forward width as a multiple of D.
        dropout: after the embeddings and in the residual/feed-forward paths; attention_dropout: on the weights.
        pre_ln: pre-LN layers and a final LayerNorm (the paper); False: post-LN layers (each ends in a
            LayerNorm, so no final one).

    Raises:
        ValueError: a patch that does not divide the image, or sizes < 1.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: Sequence[int] = (32, 32),
                 patch: int = 4, dim: int = 192, depth: int = 6, heads: int = 3, mlp_ratio: float = 2.0,
                 dropout: float = 0.0, attention_dropout: float = 0.0, pre_ln: bool = True) -> None:
        super().__init__()
        h, w = (int(s) for s in image_size)
        if min(patch, dim, depth, heads, num_classes, in_channels, h, w) < 1 or mlp_ratio <= 0:
            raise ValueError("ViT sizes (patch, dim, depth, heads, mlp_ratio, classes, channels) must be >= 1")
        if h % patch or w % patch:
            raise ValueError(f"vit.patch {patch} must divide the image size {h}x{w}")
        self.image_size = (h, w)
        self.grid = (h // patch, w // patch)
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        self.pos_drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim, heads, round(dim * mlp_ratio), dropout, attention_dropout=attention_dropout,
                                    activation="gelu", norm_first=pre_ln, layer_norm_eps=1e-6)
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6) if pre_ln else nn.Identity()
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Truncated normal (std 0.02) for the embeddings and the linear layers, zero biases (the reference
        implementation's init); the attention projections keep the shared layer's own initialization."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def cam_layer(self) -> nn.Module:
        """The layer Grad-CAM reads (the only spatial (B, D, h, w) activation: the patch embedding)."""
        return self.patch_embed

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the encoder's input tokens (B, 1 + h * w, D): class token first."""
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"ViT built for {self.image_size[0]}x{self.image_size[1]} images, "
                             f"got {tuple(x.shape[-2:])}")
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, h * w, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        return self.pos_drop(torch.cat([cls, patches], dim=1) + self.pos_embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.tokens(x)  # (B, S, D)
        for layer in self.layers:
            z = layer(z)
        return self.head(self.norm(z[:, 0]))  # (B, num_classes)

    def attention_modules(self) -> list[nn.Module]:
        """The self-attention of each layer, first layer first (what ``capture_attention`` records)."""
        return [layer.self_attn for layer in self.layers]

    def rollout_from(self, maps: dict[str, list[torch.Tensor]], prefix: str = "") -> torch.Tensor:
        """The class token's rollout over the patches, (B, h, w), from a ``capture_attention`` dict of the last
        forward pass (names under ``prefix``, the model's name in the captured module; "" for the model)."""
        head = f"{prefix}." if prefix else ""
        weights = [maps[f"{head}layers.{i}.self_attn"][-1] for i in range(len(self.layers))]  # (B, H, S, S) each
        return attention_rollout(weights)[:, 0, 1:].reshape(-1, *self.grid)

    @torch.no_grad()
    def rollout(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, num_classes) and the class token's attention rollout over the patches (B, h, w) for
        normalized images ``x`` (B, C, H, W), read through ``capture_attention``."""
        with capture_attention(self) as maps:
            logits = self(x)
        return logits, self.rollout_from(maps)
