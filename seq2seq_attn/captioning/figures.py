"""The paper's figure of attended words: per image a strip of panels, the image and then, for every generated
word (and the final EOS), its attention map upsampled to the image and overlaid on it (Xu et al., 2015,
Figs. 2-3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..plotting import save_figure


def upsample_attention(weights: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """weights (T, L) over an ``grid`` = (h, w) feature map -> (T, H, W) bilinearly upsampled to ``size``,
    each map rescaled to [0, 1] (an all-zero map stays zero)."""
    maps = weights.detach().float().cpu().view(-1, 1, *grid)  # (T, 1, h, w)
    up = F.interpolate(maps, size=size, mode="bilinear", align_corners=False).squeeze(1)  # (T, H, W)
    top = up.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    return (up / top).clamp(0.0, 1.0)


def save_attention_strip(image: torch.Tensor, words: Sequence[str], weights: torch.Tensor, grid: tuple[int, int],
                         path: Path, title: str | None = None) -> Path:
    """Write the strip for one image: ``image`` uint8 (C, H, W) (1 or 3 channels), ``words`` the caption's
    words (``</s>`` appended here), ``weights`` (len(words) + 1, L) their attention. Raises ``ValueError`` when
    the shapes disagree."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*words, "</s>"]
    if weights.shape[0] != len(labels) or weights.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"attention of shape {tuple(weights.shape)} does not fit {len(labels)} words over a "
                         f"{grid[0]}x{grid[1]} grid")
    height, width = image.shape[-2:]
    maps = upsample_attention(weights, grid, (height, width)).numpy()
    shown = image.permute(1, 2, 0).cpu().numpy()
    gray = shown.shape[-1] == 1
    shown = shown[..., 0] if gray else shown
    panels = len(labels) + 1
    side = 1.8 * max(1.0, width / height)
    fig, axes = plt.subplots(1, panels, figsize=(side * panels, 1.8 + (0.3 if title else 0.0)), squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.imshow(shown, cmap="gray" if gray else None, vmin=0, vmax=255)
        if k > 0:
            ax.imshow(maps[k - 1], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            ax.set_title(labels[k - 1], fontsize=10)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=100)
