"""Caption datasets as uint8 image tensors with tokenized captions (and, for the built-in sets, word boxes).

The ``data:`` section of a caption config (a mapping; :func:`load_caption_split` reads it):

- ``format``: ``coco`` | ``flickr8k`` | ``imagefolder`` (users' files, :mod:`.readers`) or ``digit_strings`` |
  ``cifar_mosaics`` (built-in benchmark sets generated from the shared data, :mod:`.benchmarks`);
- users' formats, one entry per split ``train`` / ``valid`` / ``test``:
  ``coco: {captions: captions.json, images: folder}``, ``flickr8k: {captions: Flickr8k.token.txt, images: folder,
  split_file: Flickr_8k.trainImages.txt}`` (``split_file`` optional), ``imagefolder: {images: folder}`` (a
  folder with ``metadata.jsonl``/``metadata.csv``, read offline by ``datasets.load_dataset("imagefolder")``).
  Paths may start with ``shared:`` (the shared data folder, :func:`seq2seq_attn.paths.resolve_path`);
- ``image_size: [H, W]``: every image is resized to it (stretched, bilinear with antialiasing, in torch) and kept
  uint8; default 224×224 for users' formats, the generated canvas for the built-in sets;
- ``on_error: raise | skip`` (default ``raise``): a bad entry (missing or unreadable image, caption of an
  unknown image, empty or malformed caption) is a one-line ``ValueError`` naming the file and the entry, or is
  left out and counted by reason in :attr:`CaptionSet.skipped`;
- the built-in sets' generator parameters (see :data:`BENCHMARK_DEFAULTS` in :mod:`.benchmarks`).

Keys this module reads are listed in :data:`DATA_KEYS`; other keys of the section are left to the caller.

Tokenization (:func:`tokenize`, as in Karpathy's ``neuraltalk`` preprocessing): lower-case, delete every
punctuation character (ASCII ``string.punctuation`` and Unicode categories P*), split on whitespace.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[float, float, float, float]

USER_FORMATS = ("coco", "flickr8k", "imagefolder")
BENCHMARK_FORMATS = ("digit_strings", "cifar_mosaics")
FORMATS = USER_FORMATS + BENCHMARK_FORMATS
SPLITS = ("train", "valid", "test")
ON_ERROR = ("raise", "skip")
DEFAULT_IMAGE_SIZE = (224, 224)


@dataclass
class CaptionSet:
    """One split of a caption dataset.

    - ``images``: uint8 (N, C, H, W), resized to the config's ``image_size`` (C = 3 for users' images and CIFAR
      mosaics, 1 for MNIST digit strings);
    - ``captions``: ``[image][caption][word]``, tokenized (:func:`tokenize`), no BOS/EOS; one or more per image;
    - ``boxes``: ``[image][caption][word]`` -> ``(x0, y0, x1, y1)`` in pixels of the resized image (x right,
      y down, x1/y1 exclusive) or ``None`` for a word without a box; ``None`` for users' datasets;
    - ``names``: the image file name or a generated id (for messages and outputs);
    - ``skipped``: entries left out by reason (``on_error: skip``).
    """

    images: torch.Tensor
    captions: list[list[list[str]]]
    boxes: list[list[list[Box | None]]] | None
    names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        n = self.images.shape[0]
        if len(self.captions) != n or len(self.names) != n:
            raise ValueError(f"{n} images but {len(self.captions)} caption lists and {len(self.names)} names")
        if any(not caps for caps in self.captions):
            raise ValueError("every image needs at least one caption")
        if self.boxes is not None:
            for i, (caps, boxes) in enumerate(zip(self.captions, self.boxes, strict=True)):
                if [len(c) for c in caps] != [len(b) for b in boxes]:
                    raise ValueError(f"image {self.names[i]}: boxes do not match its caption words")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return int(self.images.shape[2]), int(self.images.shape[3])


_PUNCTUATION = set(string.punctuation)


def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, delete punctuation (ASCII ``string.punctuation`` and Unicode categories P*) and split
    on whitespace: ``"A dog's ball, red."`` -> ``["a", "dogs", "ball", "red"]``."""
    kept = "".join(ch for ch in text.lower()
                   if ch not in _PUNCTUATION and not unicodedata.category(ch).startswith("P"))
    return kept.split()


class ErrorPolicy:
    """``on_error``: :meth:`bad` raises ``ValueError(message)`` (``raise``) or counts ``reason`` (``skip``)."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"data.on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.on_error = on_error
        self.skipped: dict[str, int] = {}

    def bad(self, reason: str, message: str) -> None:
        """A bad entry: raise (the message names the file and entry) or count it under ``reason``."""
        if self.on_error == "raise":
            raise ValueError(message)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def count(self, reason: str) -> None:
        """Count an entry that is always left out (not an error), e.g. an image without captions."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def read_image(path: Path) -> np.ndarray:
    """Decode an image file with Pillow -> uint8 (H, W, 3) RGB, turned upright by its EXIF orientation (photos
    from cameras). Raises ``ValueError`` naming the file when it is missing or not a readable image (unknown
    format, truncated data)."""
    from PIL import Image, ImageOps

    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # UnidentifiedImageError, truncated file, broken header
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def resize_images(images: torch.Tensor, size: tuple[int, int], chunk: int = 2048) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, H, W) with ``size`` = (H, W): bilinear with antialiasing (a no-op when
    the size already matches), rounded; done in chunks to bound the float copy."""
    if tuple(images.shape[2:]) == tuple(size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].float()
        y = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def stack_resized(arrays: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Decoded images of any sizes, uint8 (h, w, C) each -> uint8 (N, C, H, W), each resized to ``size``."""
    if not arrays:
        return torch.zeros((0, 3, *size), dtype=torch.uint8)
    out = [resize_images(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None], size)
           for a in arrays]
    return torch.cat(out)


def scale_box(box: Sequence[float], from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """``(x0, y0, x1, y1)`` in pixels of an image of (H, W) ``from_size`` -> the same box in ``to_size``."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def image_size_of(data: Mapping[str, Any], default: tuple[int, int]) -> tuple[int, int]:
    """``data.image_size`` as (H, W), or ``default``; a one-line error for anything but two positive ints."""
    size = data.get("image_size")
    if size is None:
        return default
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"data.image_size must be [H, W] with two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


#: Keys of the ``data:`` section that this module reads (besides the splits' own entries).
DATA_KEYS = frozenset({"format", "image_size", "on_error", *SPLITS, "source", "train_size", "valid_size", "test_size",
                       "holdout", "seed", "canvas", "min_digits", "max_digits"})


def load_caption_split(data: Mapping[str, Any], split: str, *, cache: str | Path | None = None) -> CaptionSet:
    """Load ``split`` (``train``, ``valid`` or ``test``) of the dataset the ``data`` config section describes
    (see the module doc). ``cache``: the folder for generated sets (default ``$SEQ2SEQ_ATTN_CACHE`` or
    ``~/.cache/seq2seq_attn``).

    Raises:
        ValueError: an unknown format or split, a bad key, or (``on_error: raise``) a bad entry, naming the
            file and the entry.
        FileNotFoundError: a captions file or image folder that does not exist, or missing shared data.
    """
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"data.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    policy = ErrorPolicy(data.get("on_error", "raise"))
    if fmt in BENCHMARK_FORMATS:
        from .benchmarks import load_benchmark

        return load_benchmark(data, split, cache=cache)
    from .readers import read_user_split

    return read_user_split(fmt, data, split, image_size_of(data, DEFAULT_IMAGE_SIZE), policy, cache)


def flip_boxes(images: torch.Tensor, boxes: Sequence[Sequence[Box | None]], generator: torch.Generator) -> torch.Tensor:
    """Mirror the pixels inside each word's box left-right, each box with probability 0.5 (a training
    augmentation for captions whose words name what lies in their boxes, e.g. the tiles of a CIFAR-10 mosaic;
    not for words a mirror changes, such as digits).

    ``images``: uint8 (B, C, H, W); ``boxes[b]``: the boxes ``(x0, y0, x1, y1)`` (pixels, exclusive ends) of image
    ``b``'s caption words, ``None`` for a word without a box. Returns a new tensor; a box is flipped at most once
    (two words with the same box share one draw). Randomness from ``generator`` only (exact on resume).
    """
    out = images.clone()
    for b, image_boxes in enumerate(boxes):
        seen = {tuple(int(round(v)) for v in box) for box in image_boxes if box is not None}
        for x0, y0, x1, y1 in sorted(seen):
            if torch.rand((), generator=generator) < 0.5:
                out[b, :, y0:y1, x0:x1] = out[b, :, y0:y1, x0:x1].flip(-1)
    return out

