"""A small clip classifier for the IAU benchmark (:mod:`vision.clips`): a per-frame CNN, optionally an IAU block
(Hou et al., 2020; :class:`vision.attention.iau.IAUBlock`) over the frames' feature maps, average pooling over
frames and positions, and a linear classifier. Without the IAU block (``iau=False``) it is the baseline: the
frames are then seen independently and their pooled features averaged, so its logits are the mean of per-frame
logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..attention.iau import IAUBlock
from .racnn import conv_pool_stack


class ClipNet(nn.Module):
    """clips (B, T, H, W) (grey frames in the place of channels) -> logits (B, num_classes).

    Args:
        num_classes; frames: T; widths: the per-frame CNN's conv widths (:func:`conv_pool_stack`);
        iau: put an IAU block after the CNN; parts, temporal, channel, spatial_temporal: its options.
    """

    def __init__(self, num_classes: int, frames: int, widths: Sequence[int] = (16, 32, 64), iau: bool = True,
                 parts: int = 4, temporal: bool = True, channel: bool = True, spatial_temporal: bool = True) -> None:
        super().__init__()
        if frames < 1 or not widths or min(widths) < 1:
            raise ValueError("frames must be >= 1 and widths non-empty and positive")
        self.frames = frames
        self.cnn = conv_pool_stack(1, widths)
        self.iau = IAUBlock(widths[-1], parts, temporal, channel, spatial_temporal) if iau else None
        self.classifier = nn.Linear(widths[-1], num_classes)

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, T, H, W) -> feature maps (B, T, C, h, w), after the IAU block when there is one."""
        b, t, h, w = clips.shape
        if t != self.frames:
            raise ValueError(f"expected clips of {self.frames} frames, got {t}")
        maps = self.cnn(clips.reshape(b * t, 1, h, w))  # (BT, C, h, w)
        maps = maps.view(b, t, *maps.shape[1:])
        return maps if self.iau is None else self.iau(maps)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.frame_features(clips).mean((1, 3, 4)))  # (B, num_classes)
