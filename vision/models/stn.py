"""Spatial transformer networks (Jaderberg et al., 2015, arXiv:1506.02025): a spatial transformer
(:class:`vision.attention.stn.SpatialTransformer`) before any classifier of the toolkit (the paper's ST-CNN
when the classifier is a CNN), and the figure of the regions it samples.

Between stages the same module is inserted through the registry (``attention: stn``, ``attention_position:
stage``); this wrapper is the "before the classifier" placement.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seq2seq_attn.plotting import save_figure

from ..attention.stn import SpatialTransformer, grid_corners
from ..glimpse import frame_image_axis, pixel_centre


class SpatialTransformerNetwork(nn.Module):
    """``classifier(transformer(images))``: images (B, C, H, W) -> logits (B, num_classes).

    ``transformer`` is a :class:`SpatialTransformer` (its ``out_size`` sets the size the classifier sees);
    ``classifier`` any image classifier taking that size. The transformer's sampling grid is recorded under
    the name ``transformer``."""

    def __init__(self, transformer: SpatialTransformer, classifier: nn.Module) -> None:
        super().__init__()
        self.transformer, self.classifier = transformer, classifier

    def attention_modules(self) -> list[nn.Module]:
        """The transformer, then the classifier's own attention modules (network order)."""
        inner = self.classifier.attention_modules() if hasattr(self.classifier, "attention_modules") else []
        return [self.transformer, *inner]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(images))


def plot_sampling_grids(images: torch.Tensor, grids: torch.Tensor, warped: torch.Tensor | None, path: str | Path,
                        labels: list[str] | None = None) -> Path:
    """Draw each image (B, 1 or 3, H, W) in [0, 1] with the quadrilateral its spatial transformer samples
    (``grids`` (B, H', W', 2), as recorded) and, when ``warped`` (B, C, H', W') in [0, 1] is given, the
    transformer's output below it. ``labels``: a title per image. Written as a PNG to ``path`` (folders
    made); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    b, c, h, w = images.shape
    corners = pixel_centre(grid_corners(grids.float().cpu()), h, w)  # (B, 4, 2) pixel units
    rows = 1 if warped is None else 2
    fig, axes = plt.subplots(rows, b, figsize=(2.2 * b, 2.4 * rows), squeeze=False)
    for n in range(b):
        ax = axes[0][n]
        img = images[n].float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
        ax.imshow(img[..., 0] if c == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.add_patch(Polygon(corners[n].numpy(), closed=True, fill=False, ec="tab:red", lw=1.2))
        ax.plot(*corners[n, 0].tolist(), "o", color="yellow", ms=3)  # the output's top-left corner
        frame_image_axis(ax, h, w, None if labels is None else labels[n])
        if warped is not None:
            out = warped[n].float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
            axes[1][n].imshow(out[..., 0] if out.shape[-1] == 1 else out, cmap="gray", vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)
