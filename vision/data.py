"""Image datasets as uint8 tensors, normalization, and augmentation on tensors on the training device.

Sources:

- ``.npz`` with ``x_train``/``y_train``/``x_test``/``y_test`` (MNIST: (N, 28, 28); colour: (N, H, W, C));
- ``.npz`` of JPEG bytes (``{split}_jpeg`` concatenated files, ``{split}_offsets``, ``y_{split}``, ``classes``:
  the shared CIFAR-10 copy). The JPEGs are decoded once with Pillow and cached as uint8 arrays in the cache
  directory (``$SEQ2SEQ_ATTN_CACHE`` or ``~/.cache/seq2seq_attn``), keyed by the file's content hash;
- a Hugging Face dataset with ``cifar10``-style columns (an image column ``img``/``image`` and ``label``):
  a folder written by ``save_to_disk`` is read with ``load_from_disk``, anything else goes to
  ``datasets.load_dataset`` (which uses its local cache; nothing here asks it to download).

Images are kept as uint8 (N, C, H, W) tensors on the CPU; batches travel as uint8 and are normalized (and, for
training, augmented) on the device by :class:`Normalize` and :func:`augment`.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from seq2seq_attn.paths import offline_datasets, resolve_path
from seq2seq_attn.training.checkpoint import atomic_write, atomic_write_json, read_json, remove_stale_temp_files

SPLITS = ("train", "test")


@dataclass
class ImageSet:
    """One split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,), ``classes`` the label names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor | np.ndarray | list[int]) -> ImageSet:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.classes)


def num_classes_of(train: ImageSet) -> int:
    """Classes of a training split: its class names, or more when a label is past them."""
    top = int(train.labels.max()) + 1 if len(train) else 0
    return max(len(train.classes), top)


def check_split(images: ImageSet, num_classes: int, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` (file and split) when the split is empty or holds a label
    outside ``0 .. num_classes - 1`` (the training classes), with the first offending image's index."""
    if len(images) == 0:
        raise ValueError(f"{where}: no images")
    bad = ((images.labels < 0) | (images.labels >= num_classes)).nonzero()
    if len(bad):
        i = int(bad[0, 0])
        raise ValueError(f"{where}: image {i} has label {int(images.labels[i])}, outside the training classes "
                         f"0..{num_classes - 1} ({len(bad)} such images)")


def cache_dir(override: str | Path | None = None) -> Path:
    """Where decoded datasets are cached: ``override``, ``$SEQ2SEQ_ATTN_CACHE`` or ``~/.cache/seq2seq_attn``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("SEQ2SEQ_ATTN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "seq2seq_attn"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) uint8 -> (N, C, H, W)."""
    if x.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8, got {x.dtype}")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise ValueError(f"{where}: expected images of shape (N, H, W) or (N, H, W, C), got {x.shape}")


def decode_jpegs(blob: np.ndarray, offsets: np.ndarray, mode: str = "RGB") -> np.ndarray:
    """Decode concatenated JPEG files (``blob[offsets[i]:offsets[i+1]]``) with Pillow -> uint8 (N, H, W, C)."""
    from PIL import Image

    images = []
    for i in range(len(offsets) - 1):
        try:
            with Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())) as im:
                images.append(np.asarray(im.convert(mode), dtype=np.uint8))
        except OSError as e:  # PIL.UnidentifiedImageError, truncated data
            raise ValueError(f"image {i}: not a readable JPEG ({e})") from None
    if not images:
        raise ValueError("no JPEG images")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"decoded JPEGs have different shapes: {sorted(shapes)[:4]}")
    return np.stack(images)


def _decoded_jpeg_split(path: Path, data: np.lib.npyio.NpzFile, split: str, cache: Path) -> np.ndarray:
    """The decoded images of ``split``, from the cache when this exact file was decoded before."""
    target = cache / "vision" / f"{path.stem}-{_file_digest(path)}-{split}.npy"
    if target.is_file():
        return np.load(target)
    try:
        x = decode_jpegs(data[f"{split}_jpeg"], data[f"{split}_offsets"])
    except ValueError as e:
        raise ValueError(f"{path}: {split} split: {e}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target.parent)  # decodes killed before they finished (up to GBs each)
    atomic_write(target, lambda fh: np.save(fh, x))  # a concurrent reader never sees a partial file
    return x


def load_npz(path: str | Path, split: str, cache: str | Path | None = None, variant: str | None = None,
             variant_seed: int = 0) -> ImageSet:
    """Load ``split`` ("train" or "test") of an image ``.npz`` (plain arrays or JPEG bytes, see module doc);
    ``variant``: one of Mnih et al.'s MNIST benchmarks made from its 28×28 digits
    (:mod:`vision.mnist_variants`: centered, translated, cluttered, cluttered100, rotated, rts) or the clip
    benchmark made from them (``clips``, :mod:`vision.clips`), cached."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = resolve_path(str(path))
    try:
        return _read_npz(path, split, cache, variant, variant_seed)
    except (EOFError, zipfile.BadZipFile, zlib.error) as e:  # truncated or not a zip archive at all
        raise ValueError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from e


def _read_npz(path: Path, split: str, cache: str | Path | None, variant: str | None, variant_seed: int
              ) -> ImageSet:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single array (.npy), not an .npz archive with x_{split}/y_{split}")
    with data:
        keys = set(data.files)
        if f"{split}_jpeg" in keys and f"{split}_offsets" in keys:
            x = _decoded_jpeg_split(path, data, split, cache_dir(cache))
        elif f"x_{split}" in keys:
            x = data[f"x_{split}"]
        else:
            raise ValueError(
                f"{path}: no {split} images: expected keys x_{split} or {split}_jpeg + {split}_offsets "
                f"(found {', '.join(sorted(keys))})"
            )
        if f"y_{split}" not in keys:
            raise ValueError(f"{path}: missing key y_{split}")
        y = data[f"y_{split}"].astype(np.int64)
        classes = [str(c) for c in data["classes"]] if "classes" in keys else None
    if variant == "clips":  # (N, T, H, W): the frames in the place of channels (vision/clips.py)
        from .clips import cached_clips

        x, y = cached_clips(path, _file_digest(path), x, y, split, variant_seed, cache_dir(cache))
    elif variant is not None:
        from .mnist_variants import cached_variant

        x = cached_variant(path, _file_digest(path), x, variant, split, variant_seed, cache_dir(cache))
    x = x if variant == "clips" else _to_nchw(x, str(path))
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} {split} images but {len(y)} labels")
    if classes is None:
        classes = [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes)


def load_hf(
    name: str,
    split: str,
    config: str | None = None,
    image_column: str | None = None,
    label_column: str = "label",
) -> ImageSet:
    """Load a Hugging Face image-classification split (``cifar10``-style columns) as an :class:`ImageSet`.

    ``name`` is a folder written by ``Dataset(Dict).save_to_disk`` or a name for ``datasets.load_dataset``,
    read offline (:func:`seq2seq_attn.paths.offline_datasets`): from the local cache only.
    """
    datasets = offline_datasets()

    local = Path(name).expanduser()
    if local.is_dir() and ((local / "dataset_dict.json").is_file() or (local / "dataset_info.json").is_file()):
        ds = datasets.load_from_disk(str(local))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{local}: no split {split!r} (splits: {', '.join(ds)})")
            ds = ds[split]
    else:
        ds = datasets.load_dataset(name, config, split=split)
    columns = ds.column_names
    if image_column is None:
        image_column = next((c for c in ("img", "image", "pixel_values") if c in columns), None)
    if image_column not in columns or label_column not in columns:
        raise ValueError(f"{name}: need an image column and {label_column!r}; columns are {', '.join(columns)}")
    images = []
    for item in ds[image_column]:
        if hasattr(item, "convert") and item.mode not in ("L", "RGB"):  # PIL image in another mode (P, RGBA)
            item = item.convert("RGB")
        images.append(np.asarray(item, dtype=np.uint8))
    x = _to_nchw(np.stack(images), name)
    y = np.asarray(ds[label_column], dtype=np.int64)
    feature = ds.features.get(label_column)
    names = getattr(feature, "names", None)
    classes = list(names) if names else [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes)


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images, scaled to [0, 1] (float64 accumulation)."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (total_sq / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class Normalize(torch.nn.Module):
    """uint8 (B, C, H, W) -> float ``(x / 255 - mean) / std``, on whatever device the batch is."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean {mean} and std {std} must have equal lengths and std > 0")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return (x.float() / 255.0 - mean) / std


INPUT_SPEC_FILE = "inputs.json"


@dataclass(frozen=True)
class InputSpec:
    """What inference needs of a run's images, saved as ``run_dir/inputs.json`` at training time so that a run
    loads without its data: the normalization ``mean``/``std`` (per channel, of images scaled to [0, 1]), the
    class ``classes`` (names, possibly fewer than ``num_classes``, the model's outputs) and the input size
    ``channels`` x ``height`` x ``width``."""

    mean: list[float]
    std: list[float]
    classes: list[str]
    num_classes: int
    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std have {len(self.mean)}/{len(self.std)} values for {self.channels} channels")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.num_classes < max(len(self.classes), 1):
            raise ValueError(f"num_classes {self.num_classes} < {max(len(self.classes), 1)} class names")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/inputs.json`` atomically; returns the file."""
        path = Path(run_dir) / INPUT_SPEC_FILE
        atomic_write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> InputSpec | None:
        """The spec saved in ``run_dir`` (``None`` for runs trained before the file existed). Raises a one-line
        ``ValueError`` naming the file and the key when it is malformed."""
        path = Path(run_dir) / INPUT_SPEC_FILE
        if not path.is_file():
            return None
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        kinds = {"mean": list, "std": list, "classes": list, "num_classes": int, "channels": int, "height": int,
                 "width": int}
        for key, kind in kinds.items():
            if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
                raise ValueError(f"{path}: key {key!r} must be a JSON {'list' if kind is list else 'integer'}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data["mean"] + data["std"]):
            raise ValueError(f"{path}: keys 'mean' and 'std' must hold numbers")
        if not all(isinstance(name, str) for name in data["classes"]):
            raise ValueError(f"{path}: key 'classes' must hold strings")
        try:
            return cls(**{key: data[key] for key in kinds})
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def augment(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True, fill: float = 0.0
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per image, on ``x``'s device.

    ``x`` is (B, C, H, W) (any dtype); all randomness comes from ``generator`` (on ``x``'s device), so a
    batch's augmentation is fixed by the generator's seed.
    """
    b, _, h, w = x.shape
    # Keep a channels-last batch channels-last (the trainer's channels_last option moves batches so).
    keep_cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if padding > 0:
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding), value=fill)  # (B, C, H+2p, W+2p)
        top = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
        left = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
        rows = top[:, None] + torch.arange(h, device=x.device)  # (B, H)
        cols = left[:, None] + torch.arange(w, device=x.device)  # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None]
        # Advanced indexing gives (B, H, W, C): each image's own window.
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, generator=generator, device=x.device) < 0.5  # (B,)
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x.contiguous(memory_format=torch.channels_last if keep_cl else torch.contiguous_format)


def batch_seed(base_seed: int, indices: torch.Tensor) -> int:
    """A seed fixed by the run's seed and the batch's example indices (so resuming mid-epoch is exact)."""
    digest = hashlib.blake2b(indices.to(torch.int64).numpy().tobytes(), digest_size=8,
                             key=int(base_seed).to_bytes(8, "little", signed=True)).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)
