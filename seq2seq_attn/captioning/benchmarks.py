"""The two built-in captioning benchmarks, generated deterministically from the shared data and cached.

- ``digit_strings``: 3 to 5 MNIST digits pasted left to right on a black canvas (default 48×160) with random
  gaps (the 28×28 digit cells never overlap) and random vertical positions; caption = the digits as words
  (``"three one four"``); each word's box = the tight box of its digit's ink (pixels > 0) on the canvas.
- ``cifar_mosaics``: 2×2 tiles of CIFAR-10 images (64×64); caption = the four class names in reading order
  (top left, top right, bottom left, bottom right); each word's box = its tile.

Sources: the train split feeds ``train`` and ``valid`` (a seeded permutation of it; its first ``holdout`` images
are the ``valid`` pool, the rest the ``train`` pool, so the two splits share no source image), the test split
feeds ``test``. Each split is drawn with a numpy generator seeded by the format, the split and ``seed``; the
result is cached as ``.npz`` in ``cache_dir/captioning`` (written atomically), keyed by the source file's
content hash, the generator parameters and :data:`VERSION`, and resized to ``image_size`` at load.

Config keys (the ``data:`` section, defaults in :data:`BENCHMARK_DEFAULTS`): ``source`` (the ``.npz``;
``shared:`` = the shared data folder), ``train_size``/``valid_size``/``test_size`` (images per split), ``holdout``,
``seed``, and for digit strings ``canvas: [H, W]``, ``min_digits``, ``max_digits``.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq_attn.paths import resolve_path
from seq2seq_attn.training.checkpoint import atomic_write, remove_stale_temp_files
from vision.data import _file_digest, cache_dir, load_npz

from .data import CaptionSet, image_size_of, resize_images, scale_box

VERSION = 1  # bump when a generator changes, so old caches are not reused
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_COMMON = {"train_size": 20000, "valid_size": 2000, "test_size": 2000, "holdout": 5000, "seed": 0}
BENCHMARK_DEFAULTS: dict[str, dict[str, Any]] = {
    "digit_strings": {"source": "shared:mnist/mnist.npz", "canvas": [48, 160], "min_digits": 3, "max_digits": 5,
                      **_COMMON},
    "cifar_mosaics": {"source": "shared:cifar10/cifar10_yoongikim_jpeg.npz", **_COMMON},
}


def ink_boxes(digits: np.ndarray) -> np.ndarray:
    """uint8 (M, h, w) -> int64 (M, 4): each image's tight box ``(x0, y0, x1, y1)`` of pixels > 0 (exclusive
    ends); the whole image for an image without ink."""
    m, h, w = digits.shape
    rows, cols = digits.any(axis=2), digits.any(axis=1)  # (M, h), (M, w)
    empty = ~rows.any(axis=1)
    y0, y1 = rows.argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)
    x0, x1 = cols.argmax(axis=1), w - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)
    boxes[empty] = (0, 0, w, h)
    return boxes


def make_digit_strings(digits: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                       canvas: tuple[int, int] = (48, 160), min_digits: int = 3, max_digits: int = 5
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` digit-string images from a pool of ``digits`` uint8 (M, h, w) with ``labels`` (M,).

    Each image holds k ~ U{min_digits..max_digits} digits drawn from the pool with replacement, their h×w cells
    left to right without overlap (the free width is split at k uniform cut points: random gaps) and at
    uniform vertical positions. Returns ``images`` uint8 (n, H, W), ``words`` int64 (n, max_digits) (the
    digit labels, -1 after the k-th) and ``boxes`` int64 (n, max_digits, 4) (ink boxes on the canvas, -1 pad).

    Raises:
        ValueError: a canvas too small for ``max_digits`` cells, or bad digit counts.
    """
    m, h, w = digits.shape
    height, width = canvas
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits} and {max_digits}")
    if height < h or width < w * max_digits:
        raise ValueError(f"canvas {height}x{width} cannot hold {max_digits} digits of {h}x{w}")
    ink = ink_boxes(digits)
    images = np.zeros((n, height, width), dtype=np.uint8)
    words = np.full((n, max_digits), -1, dtype=np.int64)
    boxes = np.full((n, max_digits, 4), -1, dtype=np.int64)
    counts = rng.integers(min_digits, max_digits + 1, n)
    for i, k in enumerate(counts):
        src = rng.integers(0, m, k)
        lefts = np.sort(rng.integers(0, width - w * k + 1, k)) + w * np.arange(k)  # (k,) non-overlapping cells
        tops = rng.integers(0, height - h + 1, k)
        for j in range(k):
            cell = images[i, tops[j]:tops[j] + h, lefts[j]:lefts[j] + w]
            np.maximum(cell, digits[src[j]], out=cell)
        words[i, :k] = labels[src]
        boxes[i, :k] = ink[src] + np.stack([lefts, tops, lefts, tops], axis=1)
    return images, words, boxes


def assemble_mosaics(tiles: np.ndarray, src: np.ndarray) -> np.ndarray:
    """2×2 mosaics: ``tiles`` uint8 (M, C, h, w), ``src`` (n, 4) tile indices in reading order (top left, top
    right, bottom left, bottom right) -> uint8 (n, C, 2h, 2w)."""
    n = len(src)
    _, c, h, w = tiles.shape
    grid = tiles[src].reshape(n, 2, 2, c, h, w)  # (n, row, col, C, h, w)
    return np.ascontiguousarray(grid.transpose(0, 3, 1, 4, 2, 5).reshape(n, c, 2 * h, 2 * w))


def make_mosaics(tiles: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` 2×2 mosaics of ``tiles`` uint8 (M, C, h, w) with ``labels`` (M,), drawn with replacement.

    Returns ``images`` uint8 (n, C, 2h, 2w), ``words`` int64 (n, 4) (the tiles' labels in reading order),
    ``boxes`` int64 (n, 4, 4) (tile t's box ``(x0, y0, x1, y1)``, the same for every image) and ``src`` int64
    (n, 4) (the tiles' indices: :func:`assemble_mosaics` rebuilds the images from them)."""
    _, _, h, w = tiles.shape
    src = rng.integers(0, len(tiles), (n, 4))
    tile_boxes = np.array([[col * w, row * h, (col + 1) * w, (row + 1) * h] for row in (0, 1) for col in (0, 1)])
    boxes = np.broadcast_to(tile_boxes, (n, 4, 4)).copy()
    return assemble_mosaics(tiles, src), labels[src].astype(np.int64), boxes, src


def benchmark_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """The generator parameters of ``data.format`` (defaults filled in), checked; one-line errors name the key."""
    fmt = data["format"]
    opts = {key: data.get(key, default) for key, default in BENCHMARK_DEFAULTS[fmt].items()}
    for key in ("train_size", "valid_size", "test_size", "holdout", "seed", "min_digits", "max_digits"):
        if key in opts and (not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 0):
            raise ValueError(f"data.{key} must be a non-negative integer, got {opts[key]!r}")
    if "canvas" in opts:
        canvas = opts["canvas"]
        if (not isinstance(canvas, (list, tuple)) or len(canvas) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in canvas)):
            raise ValueError(f"data.canvas must be [H, W] with two positive integers, got {canvas!r}")
        opts["canvas"] = [int(canvas[0]), int(canvas[1])]
        if not 1 <= opts["min_digits"] <= opts["max_digits"]:
            raise ValueError(f"data.min_digits and data.max_digits need 1 <= min_digits <= max_digits, got "
                             f"{opts['min_digits']} and {opts['max_digits']}")
        if canvas[0] < 28 or canvas[1] < 28 * opts["max_digits"]:
            raise ValueError(f"data.canvas {canvas[0]}x{canvas[1]} cannot hold {opts['max_digits']} digits of 28x28")
    return opts


def _split_pool(path: str, split: str, opts: dict[str, Any], cache: str | Path | None
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The source images (M, C, h, w) and labels (M,) that ``split`` draws from, and the class names."""
    source = load_npz(path, "test" if split == "test" else "train", cache=cache)
    images, labels = source.images.numpy(), source.labels.numpy()
    if split != "test":
        if opts["holdout"] >= len(images):
            raise ValueError(f"data.holdout {opts['holdout']} leaves no training images of {len(images)}")
        order = np.random.default_rng([zlib.crc32(b"holdout"), opts["seed"]]).permutation(len(images))
        order = order[:opts["holdout"]] if split == "valid" else order[opts["holdout"]:]
        images, labels = images[order], labels[order]
    if len(images) == 0:
        raise ValueError(f"{path}: no {split} source images")
    return images, labels, source.classes


def generate_split(fmt: str, split: str, opts: dict[str, Any], cache: str | Path | None = None
                   ) -> dict[str, np.ndarray]:
    """Generate ``split`` of a built-in set (no cache): ``images`` uint8 (n, C, H, W), ``words`` int64 (n, K),
    ``boxes`` int64 (n, K, 4), ``vocab`` (the word of each label) and, for mosaics, ``src`` (n, 4)."""
    images, labels, classes = _split_pool(opts["source"], split, opts, cache)
    rng = np.random.default_rng([zlib.crc32(fmt.encode()), zlib.crc32(split.encode()), opts["seed"]])
    n = opts[f"{split}_size"]
    if fmt == "digit_strings":
        x, words, boxes = make_digit_strings(images[:, 0], labels, n, rng, tuple(opts["canvas"]),
                                             opts["min_digits"], opts["max_digits"])
        return {"images": x[:, None], "words": words, "boxes": boxes, "vocab": np.array(DIGIT_WORDS)}
    x, words, boxes, src = make_mosaics(images, labels, n, rng)
    return {"images": x, "words": words, "boxes": boxes, "vocab": np.array(classes), "src": src}


def cached_split(fmt: str, split: str, opts: dict[str, Any], cache: str | Path | None = None
                 ) -> dict[str, np.ndarray]:
    """:func:`generate_split`, read from ``cache_dir/captioning`` when this exact set was generated before.
    Digit strings are cached whole (compressed); mosaics without their images (a gather of the source tiles,
    whose decoded copy :func:`vision.data.load_npz` caches, rebuilds them)."""
    path = resolve_path(opts["source"], what=f"{fmt} source")
    opts = {**opts, "source": str(path)}
    key = {k: v for k, v in opts.items() if k not in ("source", *(f"{s}_size" for s in ("train", "valid", "test")))}
    key.update(size=opts[f"{split}_size"], version=VERSION)
    params = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=6).hexdigest()
    target = cache_dir(cache) / "captioning" / f"{fmt}-{path.stem}-{_file_digest(path)}-{split}-{params}.npz"
    if target.is_file():
        with np.load(target, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        if "images" not in arrays:
            arrays["images"] = assemble_mosaics(_split_pool(opts["source"], split, opts, cache)[0], arrays["src"])
        return arrays
    arrays = generate_split(fmt, split, opts, cache)
    stored = {k: v for k, v in arrays.items() if not (k == "images" and "src" in arrays)}
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target.parent)
    atomic_write(target, lambda fh: np.savez_compressed(fh, **stored))
    return arrays


def to_caption_set(fmt: str, split: str, arrays: Mapping[str, np.ndarray], image_size: tuple[int, int]
                   ) -> CaptionSet:
    """Generated arrays -> a :class:`CaptionSet` with images resized to ``image_size`` and boxes scaled."""
    images = torch.from_numpy(np.ascontiguousarray(arrays["images"]))
    from_size = (int(images.shape[2]), int(images.shape[3]))
    vocab = [str(v) for v in arrays["vocab"]]
    captions, boxes = [], []
    for words, word_boxes in zip(arrays["words"].tolist(), arrays["boxes"].tolist(), strict=True):
        k = sum(1 for w in words if w >= 0)
        captions.append([[vocab[w] for w in words[:k]]])
        boxes.append([[scale_box(b, from_size, image_size) for b in word_boxes[:k]]])
    names = [f"{fmt}-{split}-{i:05d}" for i in range(len(captions))]
    return CaptionSet(resize_images(images, image_size), captions, boxes, names, {})


def load_benchmark(data: Mapping[str, Any], split: str, *, cache: str | Path | None = None) -> CaptionSet:
    """``split`` of the built-in set ``data.format`` (see the module doc), generated or read from the cache."""
    fmt = data["format"]
    opts = benchmark_options(data)
    if opts[f"{split}_size"] < 1:
        raise ValueError(f"data.{split}_size must be >= 1 to load the {split} split")
    image_size_of(data, (1, 1))  # a bad image_size fails before the set is generated
    arrays = cached_split(fmt, split, opts, cache)
    native = tuple(arrays["images"].shape[2:])
    return to_caption_set(fmt, split, arrays, image_size_of(data, native))
