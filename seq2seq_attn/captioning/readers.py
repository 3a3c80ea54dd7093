"""Readers of users' caption datasets (the ``data:`` keys are described in :mod:`.data`).

- ``coco``: a COCO captions JSON (``{"images": [{"id", "file_name"}, ...], "annotations": [{"id", "image_id",
  "caption"}, ...]}``, Chen et al., 2015, "Microsoft COCO Captions") and the folder holding the files;
- ``flickr8k``: a Flickr8k token file (``NAME.jpg#K<TAB>caption`` per line, Hodosh et al., 2013), the image
  folder and optionally a split file (one image name per line, e.g. ``Flickr_8k.trainImages.txt``);
- ``imagefolder``: a folder read offline by ``datasets.load_dataset("imagefolder", data_dir=...)`` whose
  ``metadata.jsonl``/``metadata.csv`` gives each ``file_name`` a ``captions`` list or a ``caption`` string.

Images keep the order of the file (COCO ``images`` list, the split file, or first appearance in the token
file); captions keep theirs. An image without any caption is left out and counted under "image without
captions" (not an error). Bad entries follow ``on_error`` (:class:`.data.ErrorPolicy`); a file that cannot be
parsed at all (malformed JSON, a missing key at the top) is always an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq_attn.paths import offline_datasets, resolve_path

from .data import CaptionSet, ErrorPolicy, read_image, stack_resized, tokenize

Captions = dict[str, list[list[str]]]  # image key -> tokenized captions, in file order


def _entry(data: Mapping[str, Any], fmt: str, split: str, required: tuple[str, ...]) -> Mapping[str, Any]:
    entry = data.get(split)
    if not isinstance(entry, Mapping) or any(key not in entry for key in required):
        raise ValueError(f"data.{split} must be a mapping with {', '.join(required)} for format {fmt}, "
                         f"got {entry!r}")
    return entry


def read_user_split(fmt: str, data: Mapping[str, Any], split: str, image_size: tuple[int, int],
                    policy: ErrorPolicy, cache: str | Path | None = None) -> CaptionSet:
    """``split`` of a users' dataset in format ``fmt`` as a :class:`CaptionSet` (``boxes`` None)."""
    if fmt == "coco":
        entry = _entry(data, fmt, split, ("captions", "images"))
        path = resolve_path(entry["captions"], "captions file")
        return _decode(*read_coco(path, resolve_path(entry["images"], "image folder"), policy), image_size, policy,
                       path)
    if fmt == "flickr8k":
        entry = _entry(data, fmt, split, ("captions", "images"))
        split_file = entry.get("split_file")
        path = resolve_path(entry["captions"], "captions file")
        return _decode(*read_flickr8k(path, resolve_path(entry["images"], "image folder"),
                                      resolve_path(split_file, "split file") if split_file else None, policy),
                       image_size, policy, path)
    entry = _entry(data, fmt, split, ("images",))
    folder = resolve_path(entry["images"], "image folder")
    return _decode(*read_imagefolder(folder, entry.get("split", "train"), policy, cache), image_size, policy, folder)


def _decode(items: list[tuple[str, Path, list[list[str]]]], where: Callable[[str], str],
            image_size: tuple[int, int], policy: ErrorPolicy, source: Path) -> CaptionSet:
    """Decode the images of ``items`` (name, file, captions); a missing or unreadable one follows ``policy``
    (the message starts with ``where(name)``). Raises ``ValueError`` naming ``source`` when no image is left."""
    arrays: list[np.ndarray] = []
    captions, names = [], []
    for name, path, caps in items:
        try:
            arrays.append(read_image(path))
        except ValueError as e:
            policy.bad("missing image" if "not found" in str(e) else "unreadable image", f"{where(name)}: {e}")
            continue
        captions.append(caps)
        names.append(name)
    if not arrays:
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(policy.skipped.items())) or "none skipped"
        raise ValueError(f"{source}: no image with a caption ({counts})")
    return CaptionSet(stack_resized(arrays, image_size), captions, None, names, dict(policy.skipped))


def read_coco(path: Path, folder: Path, policy: ErrorPolicy
              ) -> tuple[list[tuple[str, Path, list[list[str]]]], Callable[[str], str]]:
    """The images of a COCO captions JSON with their tokenized captions: (file name, path, captions) in the
    ``images`` list's order, and how messages name an image. Raises ``ValueError`` naming the file for
    malformed JSON or a missing ``images``/``annotations`` list; bad entries follow ``policy``."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else "encoding"
        raise ValueError(f"{path}: malformed JSON ({getattr(e, 'msg', e)} at {where})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations")):
        raise ValueError(f"{path}: expected a JSON object with 'images' and 'annotations' lists")
    files: dict[Any, str] = {}
    for i, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or "id" not in image:
            policy.bad("malformed image entry", f"{path}: images[{i}]: needs 'id' and a 'file_name' string")
        elif image["id"] in files:
            policy.bad("duplicate image id", f"{path}: images[{i}]: duplicate image id {image['id']!r}")
        else:
            files[image["id"]] = image["file_name"]
    captions: dict[Any, list[list[str]]] = {}
    for i, ann in enumerate(doc["annotations"]):
        ann_id = ann.get("id", f"#{i}") if isinstance(ann, dict) else f"#{i}"
        where = f"{path}: annotation {ann_id}"
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            policy.bad("malformed annotation", f"{where}: needs 'image_id' and a 'caption' string")
        elif ann["image_id"] not in files:
            policy.bad("caption of an unknown image", f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        elif not (words := tokenize(ann["caption"])):
            policy.bad("empty caption", f"{where}: empty caption")
        else:
            captions.setdefault(ann["image_id"], []).append(words)
    items = []
    for image_id, name in files.items():
        if image_id in captions:
            items.append((name, folder / name, captions[image_id]))
        else:
            policy.count("image without captions")
    by_name = {name: image_id for image_id, name in files.items()}
    return items, lambda name: f"{path}: image id {by_name[name]!r}"


def _flickr_captions(path: Path, policy: ErrorPolicy) -> Captions:
    """Image name -> tokenized captions of a Flickr8k token file (``NAME#K<TAB>caption``)."""
    captions: Captions = {}
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        name, hash_, number = key.strip().rpartition("#")
        if not tab or not hash_ or not name or not number.isdigit():
            policy.bad("malformed line", f"{path}:{lineno}: expected 'IMAGE#K<TAB>caption', got {line[:60]!r}")
        elif not (words := tokenize(caption)):
            policy.bad("empty caption", f"{path}:{lineno}: empty caption of {name}")
        else:
            captions.setdefault(name, []).append(words)
    return captions


def read_flickr8k(path: Path, folder: Path, split_file: Path | None, policy: ErrorPolicy
                  ) -> tuple[list[tuple[str, Path, list[list[str]]]], Callable[[str], str]]:
    """The images of a Flickr8k token file (those of ``split_file`` when given, in its order) with their
    tokenized captions, and how messages name an image. A split-file name without captions follows ``policy``."""
    captions = _flickr_captions(path, policy)
    if split_file is None:
        names = list(captions)
    else:
        names = []
        with open(split_file, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                name = line.strip()
                if not name:
                    continue
                if name in captions:
                    names.append(name)
                else:
                    policy.bad("image without captions", f"{split_file}:{lineno}: {name} has no caption in {path}")
    return [(name, folder / name, captions[name]) for name in names], lambda name: f"{path}: image {name}"


def read_imagefolder(folder: Path, split: str, policy: ErrorPolicy, cache: str | Path | None
                     ) -> tuple[list[tuple[str, Path, list[list[str]]]], Callable[[str], str]]:
    """The images of a Hugging Face ``imagefolder`` (metadata column ``captions`` or ``caption``) with their
    tokenized captions, read offline; ``datasets``' own cache goes to ``cache_dir/hf``."""
    from vision.data import cache_dir

    datasets = offline_datasets()
    try:
        ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split=split,
                                   cache_dir=str(cache_dir(cache) / "hf"))
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds (bad metadata, no files, unknown split)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{folder}: not a readable imagefolder split {split!r} ({type(e).__name__}: "
                         f"{first[:200]})") from None
    column = next((c for c in ("captions", "caption") if c in ds.column_names), None)
    if column is None or "image" not in ds.column_names:
        raise ValueError(f"{folder}: metadata needs a 'captions' (list) or 'caption' column; columns are "
                         f"{', '.join(ds.column_names)}")
    ds = ds.cast_column("image", datasets.Image(decode=False))
    root = folder.resolve()
    items = []
    for row in ds:
        file = Path(row["image"]["path"])
        name = str(file.relative_to(root)) if file.is_relative_to(root) else file.name
        texts = row[column]
        texts = [texts] if isinstance(texts, str) else (texts or [])
        caps = []
        for k, text in enumerate(texts):
            words = tokenize(text) if isinstance(text, str) else []
            if words:
                caps.append(words)
            else:
                policy.bad("empty caption", f"{folder}: image {name}: caption {k} is empty or not text")
        if caps:
            items.append((name, file, caps))
        elif not texts:
            policy.count("image without captions")
    return items, lambda name: f"{folder}: image {name}"
