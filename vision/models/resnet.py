"""ResNets for small images with an attention module in every residual block or after chosen stages.

- CIFAR ResNet-20/32/44/56/110: He, Zhang, Ren, Sun (2016), "Deep Residual Learning for Image Recognition",
  CVPR, arXiv:1512.03385, section 4.2: a 3×3 stem with 16 channels, three stages of ``n`` basic blocks with
  16/32/64 channels (depth 6n + 2), global average pooling and a linear classifier. Shortcuts use **option A**
  by default (the paper's CIFAR setting: identity, subsampled and zero-padded where the shape changes, no
  extra parameters); ``shortcut="B"`` uses 1×1 convolution + BN projections where the shape changes.
- ResNet-18 with the CIFAR stem (a 3×3 stride-1 convolution and no max-pool, as in the common CIFAR ports of
  the ImageNet model): four stages of two basic blocks with 64/128/256/512 channels, option **B** shortcuts.
- A small ResNet for MNIST-sized inputs: any number of stages, widths and blocks per stage (default one block
  per stage, widths 16/32/64).

Attention (``attention=NAME`` from :func:`vision.create_attention`):

- ``attention_position="block"`` (SE-style, Hu et al., 2018, arXiv:1709.01507, Fig. 3): the module reweights
  the residual branch after its last BN, before the addition with the shortcut;
- ``attention_position="stage"`` (non-local style, Wang et al., 2018, arXiv:1711.07971): one module after the
  last block of each chosen stage.

``attention_stages`` (1-based) limits either form to some stages; ``None`` means every stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import create_attention

Shortcut = Literal["A", "B"]
Position = Literal["block", "stage"]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A shortcut cannot reduce channels ({in_channels} -> {out_channels})")
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, ceil(H/s), ceil(W/s))
        # Split the padding over both sides as in the reference CIFAR implementations.
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))  # (B, C_out, H', W')


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN [-attention] + shortcut, then ReLU (He et al., 2016)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: Shortcut = "A",
        attention: str | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.attn = create_attention(attention, out_channels, **(attention_kwargs or {}))
        self.relu = nn.ReLU(inplace=True)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        elif shortcut == "B":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, C_out, H', W')
        out = self.attn(self.bn2(self.conv2(out)))  # residual branch reweighted before the addition
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, ``len(blocks)`` stages of basic blocks (the first stride 1, the others stride 2), pool, linear."""

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int | None = None,
        stem_stride: int = 1,
        shortcut: Shortcut = "A",
        attention: str | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        attention_stages: Sequence[int] | None = None,
        attention_position: Position = "block",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(f"blocks {list(blocks)} and widths {list(widths)} must be non-empty and equally long")
        if any(b < 1 for b in blocks) or any(w < 1 for w in widths):
            raise ValueError(f"blocks {list(blocks)} and widths {list(widths)} must be >= 1")
        if attention_position not in ("block", "stage"):
            raise ValueError(f"attention_position must be 'block' or 'stage', got {attention_position!r}")
        stages_with_attention = set(range(1, len(blocks) + 1) if attention_stages is None else attention_stages)
        bad = sorted(s for s in stages_with_attention if not 1 <= s <= len(blocks))
        if bad:
            raise ValueError(f"attention_stages {bad} out of range: the model has stages 1..{len(blocks)}")
        self.attention = attention or None
        self.attention_position = attention_position

        stem_channels = stem_channels or widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        channels = stem_channels
        for i, (n, width) in enumerate(zip(blocks, widths), start=1):
            use = self.attention is not None and i in stages_with_attention
            block_attn = attention if use and attention_position == "block" else None
            layers: list[nn.Module] = []
            for j in range(n):
                stride = 2 if (i > 1 and j == 0) else 1
                layers.append(BasicBlock(channels, width, stride, shortcut, block_attn, attention_kwargs))
                channels = width
            if use and attention_position == "stage":
                layers.append(create_attention(attention, width, **(attention_kwargs or {})))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        self._init_backbone()

    def attention_modules(self) -> list[nn.Module]:
        """The inserted attention modules, in network order (empty without attention)."""
        if self.attention is None:
            return []
        found = []
        for stage in self.stages:
            for layer in stage:
                if isinstance(layer, BasicBlock):
                    if not isinstance(layer.attn, nn.Identity):
                        found.append(layer.attn)
                else:
                    found.append(layer)
        return found

    def _init_backbone(self) -> None:
        """He initialization for the backbone only: attention modules keep their own (often zero) init."""
        inside_attention = {id(m) for a in self.attention_modules() for m in a.modules()}
        for m in self.modules():
            if id(m) in inside_attention:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, C_last, H / 2^(stages-1), W / 2^(stages-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = self.pool(x).flatten(1)  # (B, C_last)
        return self.fc(self.dropout(x))  # (B, num_classes)


CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
ARCHS = (*CIFAR_DEPTHS, "resnet18", "small")


def build_resnet(
    arch: str,
    num_classes: int = 10,
    in_channels: int = 3,
    shortcut: Shortcut | None = None,
    blocks: Sequence[int] | None = None,
    widths: Sequence[int] | None = None,
    **kwargs: Any,
) -> ResNet:
    """Build ``arch``: ``resnet20/32/44/56/110`` (CIFAR, option A), ``resnet18`` (CIFAR stem, option B) or
    ``small`` (``blocks``/``widths`` given, default one block per stage with widths 16/32/64, option A).

    ``kwargs`` go to :class:`ResNet` (attention, attention_kwargs, attention_stages, attention_position, ...).
    """
    if arch in CIFAR_DEPTHS:
        if blocks is not None or widths is not None:
            raise ValueError(f"{arch} fixes blocks and widths; use arch 'small' to choose them")
        n = CIFAR_DEPTHS[arch]
        return ResNet([n, n, n], [16, 32, 64], num_classes, in_channels, shortcut=shortcut or "A", **kwargs)
    if arch == "resnet18":
        if blocks is not None or widths is not None:
            raise ValueError("resnet18 fixes blocks and widths; use arch 'small' to choose them")
        return ResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes, in_channels, shortcut=shortcut or "B",
                      **kwargs)
    if arch == "small":
        widths = list(widths) if widths is not None else [16, 32, 64]
        blocks = list(blocks) if blocks is not None else [1] * len(widths)
        return ResNet(blocks, widths, num_classes, in_channels, shortcut=shortcut or "A", **kwargs)
    raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")


def resnet20(**kwargs: Any) -> ResNet:
    return build_resnet("resnet20", **kwargs)


def resnet56(**kwargs: Any) -> ResNet:
    return build_resnet("resnet56", **kwargs)


def resnet110(**kwargs: Any) -> ResNet:
    return build_resnet("resnet110", **kwargs)


def resnet18(**kwargs: Any) -> ResNet:
    return build_resnet("resnet18", **kwargs)


def mnist_resnet(**kwargs: Any) -> ResNet:
    """The small ResNet for 1-channel 28×28 digits (one block per stage, widths 16/32/64 unless given)."""
    kwargs.setdefault("in_channels", 1)
    return build_resnet("small", **kwargs)
