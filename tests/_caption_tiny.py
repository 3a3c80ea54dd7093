"""A tiny captioning set made in memory: 16 x 48 grey images with three glyphs in three 16 x 16 cells; the
caption names the glyphs left to right, each word keeps its cell as box."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from seq2seq_attn.captioning.data import CaptionSet

GLYPHS = ("bar", "pole", "box", "dot")


def glyph(name: str) -> torch.Tensor:
    """A 16 x 16 uint8 cell holding the glyph ``name``."""
    cell = torch.zeros(16, 16, dtype=torch.uint8)
    if name == "bar":
        cell[6:10, 2:14] = 255
    elif name == "pole":
        cell[2:14, 6:10] = 255
    elif name == "box":
        cell[3:13, 3:13] = 255
        cell[5:11, 5:11] = 0
    else:
        cell[5:11, 5:11] = 255
    return cell


def tiny_set(count: int = 8, seed: int = 0, boxes: bool = True) -> CaptionSet:
    g = torch.Generator().manual_seed(seed)
    images, captions, all_boxes = [], [], []
    for _ in range(count):
        words = [GLYPHS[int(i)] for i in torch.randint(0, len(GLYPHS), (3,), generator=g)]
        images.append(torch.cat([glyph(w) for w in words], dim=1).unsqueeze(0))  # (1, 16, 48)
        captions.append([words])
        all_boxes.append([[(16.0 * k, 0.0, 16.0 * k + 16, 16.0) for k in range(3)]])
    return CaptionSet(torch.stack(images), captions, all_boxes if boxes else None, [f"img{i}" for i in range(count)])


def write_coco(root: Path, data) -> Path:
    """The tiny set as a COCO captions JSON + PNG files (the data side's reader, as a user's files)."""
    folder = root / "images"
    folder.mkdir(parents=True)
    images, annotations = [], []
    for i, (image, caps) in enumerate(zip(data.images, data.captions)):
        Image.fromarray(image[0].numpy()).save(folder / f"{data.names[i]}.png")
        images.append({"id": i, "file_name": f"{data.names[i]}.png"})
        annotations += [{"id": len(annotations), "image_id": i, "caption": " ".join(c)} for c in caps]
    (root / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}), encoding="utf-8")
    return folder
