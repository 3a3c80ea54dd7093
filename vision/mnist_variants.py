"""The four MNIST benchmarks of Mnih et al. (2014, "Recurrent Models of Visual Attention", section 4.1), made
deterministically from an MNIST ``.npz`` and cached like the decoded CIFAR-10 copy (:mod:`vision.data`).

- ``centered``: the 28×28 digits as they are;
- ``translated``: each digit placed at a uniformly random position on a 60×60 black canvas;
- ``cluttered``: translated 60×60 plus 4 distractor pieces, 8×8 crops at random positions of random other
  digits of the same split, pasted at random positions (pixel-wise maximum);
- ``cluttered100``: 100×100 with 8 such pieces;

and two of the distorted MNIST sets of Jaderberg et al. (2015, "Spatial Transformer Networks", section 4.1):

- ``rotated`` ("R"): each digit rotated by an angle uniform in ±90°, on its 28×28 canvas;
- ``rts`` ("RTS"): rotated by ±45°, scaled by a factor uniform in 0.7-1.2 and placed at a uniformly random
  position of a 42×42 canvas (the scaled 28×28 square inside it); bilinear resampling (:func:`warp_digits`).

Everything random comes from a numpy generator seeded by the variant, the split and ``seed``, so the same
inputs give the same images; the result is cached as ``.npy`` in ``cache_dir/vision``, keyed by the source
file's content hash, the variant, the split, the seed and :data:`VERSION`.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

#: variant -> (canvas side, distractor pieces, piece side)
VARIANTS: dict[str, tuple[int, int, int]] = {
    "centered": (28, 0, 8), "translated": (60, 0, 8), "cluttered": (60, 4, 8), "cluttered100": (100, 8, 8),
}
#: variant -> (canvas side, max |angle| in degrees, (min scale, max scale), random placement)
WARPS: dict[str, tuple[int, float, tuple[float, float], bool]] = {
    "rotated": (28, 90.0, (1.0, 1.0), False), "rts": (42, 45.0, (0.7, 1.2), True),
}
VERSION = 1  # bump when the generator changes, so old caches are not reused


def place(canvas: np.ndarray, pieces: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Paste ``pieces`` (N, h, w) into ``canvas`` (N, H, W) at top-left corners ``rows``, ``cols`` (N,), in
    place, keeping the pixel-wise maximum (vectorized over N)."""
    n, h, w = pieces.shape
    r = rows[:, None, None] + np.arange(h)[None, :, None]  # (N, h, 1)
    c = cols[:, None, None] + np.arange(w)[None, None, :]  # (N, 1, w)
    idx = np.arange(n)[:, None, None]
    canvas[idx, r, c] = np.maximum(canvas[idx, r, c], pieces)


def split_seed(seed: int, split: str) -> int:
    """The generator seed of a split: ``seed`` for ``train``, another for every other split."""
    return seed + (0 if split == "train" else 1_000_003)


def check_digits(digits: np.ndarray, variant: str) -> None:
    """``ValueError`` for an unknown variant or digits that are not uint8 (N, 28, 28)."""
    if variant not in VARIANTS and variant not in WARPS:
        raise ValueError(f"unknown MNIST variant {variant!r}; expected one of {', '.join([*VARIANTS, *WARPS])}")
    if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise ValueError(f"digits must be uint8 (N, 28, 28), got {digits.dtype} {digits.shape}")


def make_variant(digits: np.ndarray, variant: str, seed: int) -> np.ndarray:
    """``digits`` uint8 (N, 28, 28) -> the ``variant``'s uint8 images (N, S, S) (see the module doc).

    Raises:
        ValueError: unknown variant or digits not (N, 28, 28) uint8.
    """
    check_digits(digits, variant)
    if variant in WARPS:
        return warp_digits(digits, variant, seed)
    return place_digits(digits, variant, seed)[0]


def digit_centres(digits: np.ndarray, variant: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``variant``'s images (N, S, S) uint8, as :func:`make_variant` makes them, and where each digit is:
    the centre of mass of its own ink (:func:`vision.glimpse.ink_centre` of the digit before it is placed, so
    not the clutter's) as pixel coordinates ``(col, row)`` (N, 2) float64,
    pixel ``j``'s centre at ``j``. For the placed variants (:data:`VARIANTS`).

    Raises:
        ValueError: a variant that is not placed (``rotated``, ``rts``), a digit without ink, or those of
            :func:`make_variant`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"digit centres are known for the placed variants ({', '.join(VARIANTS)}), not {variant!r}")
    import torch

    from .glimpse import ink_centre

    check_digits(digits, variant)
    images, corners = place_digits(digits, variant, seed)  # corners (N, 2): row, col
    own = ink_centre(torch.from_numpy(digits)[:, None]).double().numpy()  # (N, 2) on the 28x28 digit
    return images, own + corners[:, ::-1]  # (col, row) on the canvas


def place_digits(digits: np.ndarray, variant: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The placed variants (:data:`VARIANTS`): the images (N, S, S) uint8 and each digit's top-left corner
    ``(row, col)`` (N, 2) int64 on its canvas."""
    size, clutter, piece = VARIANTS[variant]
    n = len(digits)
    if variant == "centered":
        return digits.copy(), np.zeros((n, 2), dtype=np.int64)
    rng = np.random.default_rng([zlib.crc32(variant.encode()), seed])
    canvas = np.zeros((n, size, size), dtype=np.uint8)
    for _ in range(clutter):
        src = (np.arange(n) + rng.integers(1, max(2, n), n)) % n  # another digit (n > 1)
        top, left = rng.integers(0, 28 - piece + 1, n), rng.integers(0, 28 - piece + 1, n)
        r = top[:, None, None] + np.arange(piece)[None, :, None]
        c = left[:, None, None] + np.arange(piece)[None, None, :]
        pieces = digits[src[:, None, None], r, c]  # (N, piece, piece)
        place(canvas, pieces, rng.integers(0, size - piece + 1, n), rng.integers(0, size - piece + 1, n))
    rows, cols = rng.integers(0, size - 28 + 1, n), rng.integers(0, size - 28 + 1, n)
    place(canvas, digits, rows, cols)
    return canvas, np.stack([rows, cols], 1).astype(np.int64)


def warp_digits(digits: np.ndarray, variant: str, seed: int, chunk: int = 4096) -> np.ndarray:
    """The ``rotated``/``rts`` images (N, S, S) uint8 of ``digits`` (N, 28, 28) uint8: per digit an angle, a
    scale and (rts) an offset of its centre from the canvas centre, drawn from a numpy generator seeded by
    the variant and ``seed``; the canvas pixel at ``p`` (pixels from the canvas centre) reads the digit at
    ``R(-angle) (p - offset) / scale`` (bilinear, zeros outside), in chunks of ``chunk`` digits."""
    import torch
    import torch.nn.functional as F

    size, max_angle, (lo, hi), placed = WARPS[variant]
    n = len(digits)
    rng = np.random.default_rng([zlib.crc32(variant.encode()), seed])
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle, n))
    scale = rng.uniform(lo, hi, n)
    room = np.maximum(size - 28 * scale, 0) / 2  # pixels the digit's centre may move each way
    offset = (rng.uniform(-1, 1, (n, 2)) * room[:, None]) if placed else np.zeros((n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    inv = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1) / scale[:, None, None]  # (N, 2, 2)
    # normalized canvas u -> normalized digit v = (S/28) inv u - (2/28) inv offset (align_corners=False units)
    theta = np.concatenate([inv * size / 28, (-(2 / 28) * inv @ offset[:, :, None])], 2)  # (N, 2, 3)
    out = np.empty((n, size, size), dtype=np.uint8)
    for start in range(0, n, chunk):
        x = torch.from_numpy(digits[start:start + chunk]).float()[:, None]  # (n, 1, 28, 28)
        t = torch.from_numpy(theta[start:start + chunk]).float()
        grid = F.affine_grid(t, [len(x), 1, size, size], align_corners=False)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out[start:start + chunk] = y[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def cached_variant(path: Path, digest: str, digits: np.ndarray, variant: str, split: str, seed: int,
                   cache: Path) -> np.ndarray:
    """:func:`make_variant` of one split, read from ``cache/vision`` when it was made before (written
    atomically, so a concurrent reader never sees a partial file)."""
    target = cache / "vision" / f"{path.stem}-{digest}-{variant}-{split}-s{seed}-v{VERSION}.npy"
    if target.is_file():
        return np.load(target)
    x = make_variant(digits, variant, split_seed(seed, split))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, x)
    os.replace(tmp, target)
    return x
