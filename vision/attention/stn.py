"""Spatial transformer (ST).

Jaderberg, Simonyan, Zisserman, Kavukcuoglu, 2015, "Spatial Transformer Networks", NeurIPS, arXiv:1506.02025.

Three parts (section 3 of the paper):

1. Localisation network ``f_loc``: the input map U (B, C, H, W) -> the 6 parameters of an affine transform
   ``theta`` (B, 2, 3). Here: conv 5x5 - 2x2 max-pool - ReLU - conv 3x3 - 2x2 max-pool - ReLU, an adaptive
   average pool to ``loc_pool``² cells (so any input size works), FC - ReLU - FC(6). Its last layer starts at
   zero weights and the identity's bias ``[1, 0, 0, 0, 1, 0]`` (the paper's appendix: "initialised to the
   identity transform"), so an inserted ST starts as the identity.
2. Grid generator: ``F.affine_grid`` maps the regular output grid G (normalized coordinates in [-1, 1],
   ``align_corners=False``: pixel centres) through ``theta`` to the sampling points ``T_theta(G)``.
3. Sampler: ``F.grid_sample`` (bilinear, zeros outside) reads U at those points into V (B, C, H', W').

The sampling grid (B, H', W', 2) of each forward pass is recorded (``capture_attention``): ``(x, y)`` in
``F.grid_sample``'s coordinates, (-1, -1) = the input's top-left corner; its four corners are the warped
region's quadrilateral (:func:`grid_corners`; drawn by ``vision.models.stn.plot_sampling_grids``).

Registered as ``stn``: with ``out_size`` None it maps (B, C, H, W) to the same shape, so it goes between
stages of a ResNet (``attention_position: stage``); ``vision.models.stn`` puts one before a classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import RecordsAttention

from ..registry import register_attention

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # theta of the identity transform, row-major (2, 3)


def localisation_net(channels: int, loc_channels: Sequence[int], hidden: int, pool: int) -> nn.Sequential:
    """conv 5x5 - max-pool 2 - ReLU - conv 3x3 - max-pool 2 - ReLU - adaptive avg-pool ``pool``² - FC - ReLU -
    FC(6), the last layer initialized to the identity transform (zero weight, bias :data:`IDENTITY`).

    Raises:
        ValueError: not two positive ``loc_channels``, or ``hidden``/``pool`` < 1."""
    if len(loc_channels) != 2 or min(loc_channels) < 1 or hidden < 1 or pool < 1:
        raise ValueError(f"loc_channels must be two sizes >= 1 and loc_hidden, loc_pool >= 1, got "
                         f"{list(loc_channels)}, {hidden}, {pool}")
    c1, c2 = loc_channels
    last = nn.Linear(hidden, 6)
    nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor(IDENTITY))
    return nn.Sequential(
        nn.Conv2d(channels, c1, 5, padding=2), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True),
        nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(c2 * pool * pool, hidden), nn.ReLU(inplace=True), last,
    )


@register_attention("stn")
class SpatialTransformer(RecordsAttention):
    """An affine spatial transformer: U (B, C, H, W) -> V (B, C, H', W') with ``(H', W') = out_size`` (default
    the input size). See the module doc.

    Args:
        channels: C of the input map.
        loc_channels: the localisation net's two conv widths; loc_hidden: its FC width; loc_pool: the side of
            its adaptive pooling grid.
        out_size: (H', W') of the output, or None for the input's size (shape-preserving).
        padding_mode: ``F.grid_sample``'s ``zeros`` (the paper), ``border`` or ``reflection``.

    Raises:
        ValueError: bad sizes or padding mode.
    """

    def __init__(self, channels: int, loc_channels: Sequence[int] = (20, 20), loc_hidden: int = 50,
                 loc_pool: int = 3, out_size: Sequence[int] | None = None, padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(f"padding_mode must be zeros, border or reflection, got {padding_mode!r}")
        if out_size is not None and (len(out_size) != 2 or min(out_size) < 1):
            raise ValueError(f"out_size must be [H, W] with positive sizes, got {out_size}")
        self.localisation = localisation_net(channels, loc_channels, loc_hidden, loc_pool)
        self.out_size = None if out_size is None else (int(out_size[0]), int(out_size[1]))
        self.padding_mode = padding_mode

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """theta (B, 2, 3), float32 (also under autocast), regressed from x (B, C, H, W)."""
        return self.localisation(x).float().view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        out_h, out_w = self.out_size or (h, w)
        theta = self.transform(x)  # (B, 2, 3)
        grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)  # (B, H', W', 2)
        self.record(grid)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False)
        return out.to(x.dtype)  # (B, C, H', W')


def grid_corners(grid: torch.Tensor) -> torch.Tensor:
    """The sampling quadrilateral of grids (B, H', W', 2): (B, 4, 2) points ``(x, y)`` in [-1, 1] units, in the
    order top-left, top-right, bottom-right, bottom-left of the output; the outer edges of its corner pixels
    (half a pixel beyond their centres, extrapolated linearly: the grid is affine)."""
    b, h, w, _ = grid.shape
    tl, tr, bl = grid[:, 0, 0], grid[:, 0, -1], grid[:, -1, 0]
    # steps (B, 2) of one output pixel along x and along y (zero for a one-pixel side)
    dx = (tr - tl) / max(w - 1, 1)
    dy = (bl - tl) / max(h - 1, 1)
    origin = tl - 0.5 * dx - 0.5 * dy
    span_x, span_y = dx * w, dy * h
    return torch.stack([origin, origin + span_x, origin + span_x + span_y, origin + span_y], 1)


def sampling_density(grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """How many sampling points of grids (B, H', W', 2) fall in each pixel of the (height, width) input: (B, H, W)
    counts (points outside the input are dropped) -- the grid drawn as a spatial attention map."""
    b = grid.shape[0]
    pts = grid.reshape(b, -1, 2).float()
    cols = torch.floor((pts[..., 0] + 1) * width / 2).long()  # pixel j spans [j, j + 1) in these units
    rows = torch.floor((pts[..., 1] + 1) * height / 2).long()
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    flat = torch.where(inside, rows * width + cols, height * width)  # outside -> one extra bin, dropped
    counts = torch.zeros(b, height * width + 1, device=grid.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=counts.dtype))
    return counts[:, :-1].view(b, height, width)
