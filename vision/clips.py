"""A clip benchmark where the frames must be related to each other, made deterministically from MNIST digits
and cached like the MNIST variants (:mod:`vision.mnist_variants`).

Each clip has ``FRAMES`` frames of ``HEIGHT``×``WIDTH`` pixels. Two digits of different classes move through it,
one in the left half and one in the right half of every frame (each a random walk of up to ``STEP`` pixels per
frame in its half); one frame, at a random place in the clip, shows no digits but a cue, a bright 8×8 square in
the left or the right half. The label is the class of the digit on the cued side. No single frame tells it:
the cue frame has no digit and the digit frames have no cue, so a network that classifies frames
independently and averages their evidence is at chance between the two digits; it has to relate the cue's
position in one frame to the digits' positions in the others.

Clips are stored as uint8 (N, T, H, W) -- the frames in the place of image channels, so that they travel
through the image task unchanged -- with int64 labels (N,).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from .mnist_variants import place

FRAMES, HEIGHT, WIDTH = 4, 32, 64
STEP = 2  # pixels a digit may move per frame, each axis
CUE = 8  # side of the cue square
VERSION = 1  # bump when the generator changes


def make_clips(digits: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips (N, T, H, W) uint8 and their labels (N,) int64 from ``digits`` (N, 28, 28) uint8 and their
    ``labels`` (N,): clip i moves digit i and a digit of another class (see the module doc).

    Raises:
        ValueError: digits not (N, 28, 28) uint8, fewer than 2 classes, or labels of another length.
    """
    if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise ValueError(f"digits must be uint8 (N, 28, 28), got {digits.dtype} {digits.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(digits) or len(np.unique(labels)) < 2:
        raise ValueError("need one label per digit and at least two classes")
    n = len(digits)
    rng = np.random.default_rng([zlib.crc32(b"clips"), seed])
    other = (np.arange(n) + rng.integers(1, max(2, n), n)) % n
    for _ in range(100):  # redraw the partners of the same class
        same = labels[other] == labels
        if not same.any():
            break
        other[same] = rng.integers(0, n, int(same.sum()))
    else:
        raise ValueError("could not pair every digit with a digit of another class")
    left_first = rng.random(n) < 0.5  # which digit goes left
    left = np.where(left_first, np.arange(n), other)
    right = np.where(left_first, other, np.arange(n))
    cue_frame = rng.integers(0, FRAMES, n)
    cue_right = rng.random(n) < 0.5
    half = WIDTH // 2
    clips = np.zeros((n, FRAMES, HEIGHT, WIDTH), dtype=np.uint8)
    room_r, room_c = HEIGHT - 28, half - 28  # free pixels around a digit in its half
    pos = rng.integers(0, [room_r + 1, room_c + 1, room_r + 1, room_c + 1], (n, 4))  # left (r, c), right (r, c)
    for f in range(FRAMES):
        pos = np.clip(pos + rng.integers(-STEP, STEP + 1, (n, 4)), 0, [room_r, room_c, room_r, room_c])
        show = cue_frame != f
        idx = np.nonzero(show)[0]
        frame = clips[idx, f]
        place(frame, digits[left[idx]], pos[idx, 0], pos[idx, 1])
        place(frame, digits[right[idx]], pos[idx, 2], pos[idx, 3] + half)
        clips[idx, f] = frame
    idx = np.arange(n)
    cue_r = rng.integers(0, HEIGHT - CUE + 1, n)
    cue_c = rng.integers(0, half - CUE + 1, n) + np.where(cue_right, half, 0)
    cue = clips[idx, cue_frame]
    place(cue, np.full((n, CUE, CUE), 255, dtype=np.uint8), cue_r, cue_c)
    clips[idx, cue_frame] = cue
    return clips, np.where(cue_right, labels[right], labels[left])


def cached_clips(path: Path, digest: str, digits: np.ndarray, labels: np.ndarray, split: str, seed: int,
                 cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """:func:`make_clips` of one split, read from ``cache/vision`` when made before (written atomically)."""
    stem = cache / "vision" / f"{path.stem}-{digest}-clips-{split}-s{seed}-v{VERSION}"
    x_file, y_file = stem.with_suffix(".x.npy"), stem.with_suffix(".y.npy")
    if x_file.is_file() and y_file.is_file():
        return np.load(x_file), np.load(y_file)
    x, y = make_clips(digits, labels, seed + (0 if split == "train" else 1_000_003))
    x_file.parent.mkdir(parents=True, exist_ok=True)
    for target, array in ((y_file, y), (x_file, x)):  # x last: its presence means both are complete
        tmp = target.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, array)
        os.replace(tmp, target)
    return x, y
