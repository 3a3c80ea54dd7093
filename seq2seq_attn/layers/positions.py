"""Absolute positions added to token embeddings: the fixed sinusoids of Vaswani et al., 2017 ("Attention Is
All You Need", section 3.5) or a learned table (Gehring et al., 2017; BERT); and their 2-D form for the h x w
positions of a feature map (:class:`GridPositionalEncoding`: half the channels per axis, as in DETR).

The sinusoidal table is computed once (in float64, stored as float32) and kept as a non-persistent buffer, so
it follows the module to its device and never enters a checkpoint.
"""

from __future__ import annotations

import math

import torch
from torch import nn

POSITION_KINDS = ("sinusoidal", "learned")


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)) (section 3.5): (length, d)."""
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.zeros(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq[: d_model // 2])
    return pe.float()


class PositionalEncoding(nn.Module):
    """Sinusoidal (fixed) or learned absolute positions, to be added to the (scaled) token embeddings.

    Args:
        d_model: embedding width D.
        max_positions: the longest sequence; longer ones raise ``ValueError``. ``None`` (sinusoidal only): no
            limit, the cached table grows (doubling) when a longer sequence comes.
        kind: ``sinusoidal`` or ``learned`` (an ``nn.Embedding`` named ``embedding``, N(0, D^-1/2) init).

    Raises:
        ValueError: for an unknown ``kind`` or a learned table without ``max_positions``.
    """

    def __init__(self, d_model: int, max_positions: int | None, kind: str = "sinusoidal") -> None:
        super().__init__()
        self.kind = kind
        self.d_model = d_model
        self.max_positions = max_positions
        if kind == "sinusoidal":
            # Not saved in checkpoints: it is a function of the shape only.
            self.register_buffer("table", sinusoidal_positions(max_positions or 512, d_model), persistent=False)
        elif kind == "learned":
            if max_positions is None:
                raise ValueError("learned positions need max_positions")
            self.embedding = nn.Embedding(max_positions, d_model)
            nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        else:
            raise ValueError(f"unknown positions {kind!r} (expected 'sinusoidal' or 'learned')")

    def forward(self, start: int, length: int) -> torch.Tensor:
        """Positions start .. start + length - 1: (length, D)."""
        end = start + length
        if self.max_positions is not None and end > self.max_positions:
            raise ValueError(f"sequence of {end} positions is longer than max_positions ({self.max_positions}); "
                             f"raise the model's max_positions")
        if self.kind == "learned":
            return self.embedding.weight[start:end]
        if end > self.table.size(0):  # only without max_positions
            size = max(end, 2 * self.table.size(0))
            self.table = sinusoidal_positions(size, self.d_model).to(self.table.device, self.table.dtype)
        return self.table[start:end]


class GridPositionalEncoding(nn.Module):
    """Absolute 2-D positions of an h x w feature map, added to its L = h*w vectors (row-major).

    The first D/2 channels encode the row, the last D/2 the column, each by a 1-D :class:`PositionalEncoding`
    (the sinusoids of Vaswani et al., 2017, or a learned table), as in DETR (Carion et al., 2020, "End-to-End
    Object Detection with Transformers", its sine and learned position embeddings) and the 2-D positional
    encodings of Parmar et al., 2018 ("Image Transformer") and Deng et al., 2017 ("Image-to-Markup Generation
    with Coarse-to-Fine Attention").

    Args:
        d_model: D, the channels of the feature map; must be even.
        grid: (h, w) of the feature map; the learned tables have exactly these rows and columns (a smaller grid
            uses their first entries, a larger one raises ``ValueError``), the sinusoids any size.
        kind: ``sinusoidal`` or ``learned``.

    Raises:
        ValueError: for an odd ``d_model`` or an unknown ``kind``.
    """

    def __init__(self, d_model: int, grid: tuple[int, int], kind: str = "sinusoidal") -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"2-D positions need an even number of channels, got {d_model}")
        learned = kind == "learned"
        self.rows = PositionalEncoding(d_model // 2, grid[0] if learned else None, kind)  # (h, D/2) table
        self.cols = PositionalEncoding(d_model // 2, grid[1] if learned else None, kind)  # (w, D/2) table

    def forward(self, height: int, width: int) -> torch.Tensor:
        """(h*w, D) row-major: position i = (i // w, i % w) gets [PE_row(i // w); PE_col(i % w)]."""
        rows = self.rows(0, height).unsqueeze(1).expand(height, width, -1)  # (h, w, D/2)
        cols = self.cols(0, width).unsqueeze(0).expand(height, width, -1)  # (h, w, D/2)
        return torch.cat([rows, cols], -1).flatten(0, 1)  # (h*w, D)
