"""Attention correctness (Liu et al., 2017, "Attention Correctness in Neural Image Captioning", AAAI): the share
of a word's attention mass that falls inside the box of the object the word names.

The decoder attends over an h×w grid of encoder positions; cell (i, j) stands for its rectangle of the image,
rows ``[i·H/h, (i+1)·H/h)`` and columns ``[j·W/w, (j+1)·W/w)`` (the attention map upsampled piecewise
constant, as the paper's figures show it). A cell partly inside the box counts with the fraction of its area
inside: a box that covers half a cell gets half of that cell's mass. Liu et al. evaluate the ground-truth
caption's words (the decoder fed the reference), so each word's box is known; words without a box (``None``)
are left out of the average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

Box = tuple[float, float, float, float]


def _cover(lo: torch.Tensor, hi: torch.Tensor, length: float, cells: int) -> torch.Tensor:
    """(T,) intervals ``[lo, hi)`` on an axis of ``length`` pixels split into ``cells`` equal cells -> (T, cells)
    fraction of each cell inside the interval."""
    edges = torch.arange(cells + 1, dtype=torch.float64) * (length / cells)  # (cells + 1,)
    inside = torch.minimum(hi[:, None], edges[None, 1:]) - torch.maximum(lo[:, None], edges[None, :-1])
    return inside.clamp_min(0) / (length / cells)


def attention_correctness(weights: torch.Tensor, boxes: Sequence[Box | None], image_size: tuple[int, int]
                          ) -> torch.Tensor:
    """The share of each word's attention mass inside its box.

    Args:
        weights: (T, h, w) one attention map per word over the encoder's h×w grid (each sums to 1).
        boxes: T boxes ``(x0, y0, x1, y1)`` in pixels of the image (x right, y down, x1/y1 exclusive), or None
            for a word without a box.
        image_size: (H, W) of the image the boxes are in.

    Returns:
        (T,) float: ``Σ_ij α_tij · |cell_ij ∩ box_t| / |cell_ij|``, NaN where the box is None.

    Raises:
        ValueError: weights not 3-D, a box count other than T, a box with x1 < x0 or y1 < y0, a bad image size.
    """
    if weights.dim() != 3:
        raise ValueError(f"weights must be (T, h, w), got shape {tuple(weights.shape)}")
    t, h, w = weights.shape
    if len(boxes) != t:
        raise ValueError(f"{t} attention maps but {len(boxes)} boxes")
    height, width = image_size
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive (H, W), got {image_size}")
    known = torch.tensor([b is not None for b in boxes], dtype=torch.bool)  # (T,)
    coords = torch.tensor([b if b is not None else (0.0, 0.0, 0.0, 0.0) for b in boxes], dtype=torch.float64)
    coords = coords.reshape(t, 4)
    if ((coords[:, 2] < coords[:, 0]) | (coords[:, 3] < coords[:, 1])).any():
        raise ValueError(f"boxes must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, got {list(boxes)}")
    rows = _cover(coords[:, 1], coords[:, 3], float(height), h)  # (T, h)
    cols = _cover(coords[:, 0], coords[:, 2], float(width), w)  # (T, w)
    share = torch.einsum("thw,th,tw->t", weights.detach().to(torch.float64).cpu(), rows, cols)  # (T,)
    share[~known] = math.nan
    return share.to(weights.dtype if weights.is_floating_point() else torch.float32)


def mean_attention_correctness(values: Iterable[torch.Tensor]) -> tuple[float, int]:
    """Average per-word correctness (outputs of :func:`attention_correctness`, one tensor per caption) over
    the words that have a box: ``(mean, words)``; ``(nan, 0)`` when no word has one."""
    total, count = 0.0, 0
    for v in values:
        v = v.detach().reshape(-1).to(torch.float64)
        kept = v[~torch.isnan(v)]
        total += float(kept.sum())
        count += int(kept.numel())
    return (total / count if count else math.nan), count
