"""The readers of users' caption datasets (COCO JSON, Flickr8k token file, HF imagefolder) on small generated
files: the captions, order and resized images they give, and each bad entry as a one-line error naming the
file and entry (on_error: raise) or a skipped, counted entry (on_error: skip)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seq2seq_attn.captioning.data import load_caption_split, read_image

COLOURS = {"red.png": (255, 0, 0), "blue.jpg": (0, 0, 255), "grey.png": (128, 128, 128)}


@pytest.fixture
def folder(tmp_path):
    """Images of three solid colours (two sizes, PNG and JPEG) and a corrupt file."""
    images = tmp_path / "images"
    images.mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        Image.fromarray(np.full((8 + 4 * i, 10, 3), colour, dtype=np.uint8)).save(images / name)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return images


def assert_solid(images: torch.Tensor, names: list[str]) -> None:
    for img, name in zip(images, names, strict=True):
        colour = torch.tensor(COLOURS[name], dtype=torch.float32)[:, None, None]
        assert (img.float() - colour).abs().max() <= 3  # JPEG is close, PNG exact


def test_read_image_gives_upright_rgb_and_names_truncated_files(tmp_path):
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(grey, mode="L").convert("P").save(tmp_path / "palette.png")
    for name in ("grey.png", "palette.png"):
        x = read_image(tmp_path / name)
        assert x.shape == (4, 6, 3) and (x == grey[:, :, None]).all()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; the upright image is the stored one rotated 90° cw
    Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(tmp_path / "turned.jpg", exif=exif)
    assert read_image(tmp_path / "turned.jpg").shape == (6, 4, 3)
    full = (tmp_path / "turned.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(full[:len(full) // 2])
    with pytest.raises(ValueError, match=r"cut.jpg: not a readable image \(OSError"):
        read_image(tmp_path / "cut.jpg")


def coco_doc(annotations=None):
    images = [{"id": 1, "file_name": "red.png"}, {"id": 2, "file_name": "blue.jpg"},
              {"id": 3, "file_name": "grey.png"}]
    annotations = annotations if annotations is not None else [
        {"id": 10, "image_id": 2, "caption": "A blue square."}, {"id": 11, "image_id": 1, "caption": "Red, red!"},
        {"id": 12, "image_id": 2, "caption": "something  BLUE"}]
    return {"images": images, "annotations": annotations}


def coco_config(tmp_path, folder, doc, **extra):
    path = tmp_path / "captions.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return {"format": "coco", "train": {"captions": str(path), "images": str(folder)}, "image_size": [6, 7], **extra}


def test_coco_reads_several_captions_per_image_in_file_order(tmp_path, folder):
    s = load_caption_split(coco_config(tmp_path, folder, coco_doc()), "train")
    assert s.names == ["red.png", "blue.jpg"]  # the images list's order; grey has no caption
    assert s.captions == [[["red", "red"]], [["a", "blue", "square"], ["something", "blue"]]]
    assert s.images.shape == (2, 3, 6, 7) and s.images.dtype == torch.uint8 and s.boxes is None
    assert_solid(s.images, s.names)
    assert s.skipped == {"image without captions": 1}
    doc = coco_doc([{"id": 10, "image_id": 2, "caption": "?"}])
    with pytest.raises(ValueError, match=r"captions.json: no image with a caption \(1 empty caption, 3 image without"):
        load_caption_split(coco_config(tmp_path, folder, doc, on_error="skip"), "train")


COCO_ERRORS = [
    ({"id": 20, "image_id": 9, "caption": "x"}, "caption of an unknown image", "annotation 20: image_id 9 is not"),
    ({"id": 21, "image_id": 1, "caption": " ,.. "}, "empty caption", "annotation 21: empty caption"),
    ({"id": 22, "image_id": 1}, "malformed annotation", "annotation 22: needs 'image_id' and a 'caption'"),
]


@pytest.mark.parametrize(("bad", "reason", "message"), COCO_ERRORS)
def test_coco_bad_annotations_raise_or_are_skipped(tmp_path, folder, bad, reason, message):
    doc = coco_doc()
    doc["annotations"].insert(1, bad)
    with pytest.raises(ValueError, match=f"captions.json: {message}"):
        load_caption_split(coco_config(tmp_path, folder, doc), "train")
    s = load_caption_split(coco_config(tmp_path, folder, doc, on_error="skip"), "train")
    assert s.skipped == {reason: 1, "image without captions": 1} and len(s) == 2


@pytest.mark.parametrize(("file", "reason", "message"), [
    ("missing.png", "missing image", r"image id 3: .*missing.png: image file not found"),
    ("broken.png", "unreadable image", r"image id 3: .*broken.png: not a readable image"),
])
def test_coco_missing_or_unreadable_images(tmp_path, folder, file, reason, message):
    doc = coco_doc()
    doc["images"][2]["file_name"] = file
    doc["annotations"].append({"id": 13, "image_id": 3, "caption": "gone"})
    with pytest.raises(ValueError, match=message):
        load_caption_split(coco_config(tmp_path, folder, doc), "train")
    s = load_caption_split(coco_config(tmp_path, folder, doc, on_error="skip"), "train")
    assert s.skipped == {reason: 1} and s.names == ["red.png", "blue.jpg"]


def test_coco_malformed_files_are_errors_even_when_skipping(tmp_path, folder):
    with pytest.raises(ValueError, match=r"captions.json: malformed JSON \(.* at line 2, column"):
        load_caption_split(coco_config(tmp_path, folder, '{"images": [],\n "annotations": [,]}', on_error="skip"),
                           "train")
    with pytest.raises(ValueError, match="captions.json: expected a JSON object with 'images' and 'annotations'"):
        load_caption_split(coco_config(tmp_path, folder, {"images": []}, on_error="skip"), "train")
    doc = coco_doc()
    doc["images"].append({"id": 1, "file_name": "grey.png"})
    with pytest.raises(ValueError, match=r"images\[3\]: duplicate image id 1"):
        load_caption_split(coco_config(tmp_path, folder, doc), "train")


def flickr_config(tmp_path, folder, lines, split_names=None, **extra):
    tokens = tmp_path / "Flickr8k.token.txt"
    tokens.write_text("\n".join(lines) + "\n")
    entry = {"captions": str(tokens), "images": str(folder)}
    if split_names is not None:
        (tmp_path / "split.txt").write_text("\n".join(split_names) + "\n")
        entry["split_file"] = str(tmp_path / "split.txt")
    return {"format": "flickr8k", "test": entry, "image_size": [5, 5], **extra}


GOOD_LINES = ["blue.jpg#0\tA blue thing .", "red.png#0\tRed", "blue.jpg#1\tIt's blue", "grey.png#0\tgrey"]


def test_flickr8k_token_file_with_and_without_a_split_file(tmp_path, folder):
    s = load_caption_split(flickr_config(tmp_path, folder, GOOD_LINES), "test")
    assert s.names == ["blue.jpg", "red.png", "grey.png"]  # first appearance
    assert s.captions[0] == [["a", "blue", "thing"], ["its", "blue"]] and s.captions[1] == [["red"]]
    assert_solid(s.images, s.names)
    s = load_caption_split(flickr_config(tmp_path, folder, GOOD_LINES, ["grey.png", "", "red.png"]), "test")
    assert s.names == ["grey.png", "red.png"] and s.skipped == {}


def test_files_with_a_byte_order_mark_and_crlf_lines(tmp_path, folder):
    data = flickr_config(tmp_path, folder, GOOD_LINES)
    plain = load_caption_split(data, "test")
    tokens = tmp_path / "Flickr8k.token.txt"
    tokens.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(GOOD_LINES).encode() + b"\r\n")
    marked = load_caption_split(data, "test")
    assert marked.names == plain.names and marked.captions == plain.captions
    config = coco_config(tmp_path, folder, coco_doc())
    path = tmp_path / "captions.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_caption_split(config, "train").names == ["red.png", "blue.jpg"]


@pytest.mark.parametrize(("lines", "split_names", "reason", "message"), [
    (GOOD_LINES[:2] + ["grey.png grey"], None, "malformed line", r"token.txt:3: expected 'IMAGE#K<TAB>caption'"),
    (GOOD_LINES[:2] + ["grey.png#x\tgrey"], None, "malformed line", r"token.txt:3: expected"),
    (GOOD_LINES[:2] + ["grey.png#0\t ... "], None, "empty caption", r"token.txt:3: empty caption of grey.png"),
    (GOOD_LINES[:2] + ["missing.jpg#0\tgone"], None, "missing image", r"image missing.jpg: .*image file not found"),
    (GOOD_LINES[:2] + ["broken.png#0\tbad"], None, "unreadable image", r"image broken.png: .*not a readable"),
    (GOOD_LINES, ["red.png", "other.jpg"], "image without captions", r"split.txt:2: other.jpg has no caption"),
])
def test_flickr8k_bad_entries_raise_or_are_skipped(tmp_path, folder, lines, split_names, reason, message):
    with pytest.raises(ValueError, match=message):
        load_caption_split(flickr_config(tmp_path, folder, lines, split_names), "test")
    s = load_caption_split(flickr_config(tmp_path, folder, lines, split_names, on_error="skip"), "test")
    assert s.skipped == {reason: 1}
    assert "red.png" in s.names and all(n in COLOURS for n in s.names)


def write_metadata(folder, rows, kind="jsonl"):
    if kind == "jsonl":
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        (folder / "metadata.csv").write_text("file_name,caption\n" + "".join(f"{r['file_name']},{r['caption']}\n"
                                                                            for r in rows))


def test_imagefolder_with_captions_lists_or_a_caption_column(tmp_path, folder, monkeypatch):
    (folder / "broken.png").unlink()
    (folder / "sub").mkdir()
    Image.fromarray(np.full((5, 5, 3), (0, 255, 0), dtype=np.uint8)).save(folder / "sub" / "green.png")
    write_metadata(folder, [{"file_name": "red.png", "captions": ["Red.", "so RED"]},
                            {"file_name": "blue.jpg", "captions": ["blue"]},
                            {"file_name": "grey.png", "captions": []},
                            {"file_name": "sub/green.png", "captions": ["Green"]}])
    data = {"format": "imagefolder", "valid": {"images": str(folder.relative_to(tmp_path))}, "image_size": [4, 4]}
    monkeypatch.chdir(tmp_path)  # a relative folder: names relative to it all the same
    s = load_caption_split(data, "valid", cache=tmp_path / "cache")
    assert sorted(zip(s.names, s.captions)) == [("blue.jpg", [["blue"]]), ("red.png", [["red"], ["so", "red"]]),
                                                ("sub/green.png", [["green"]])]
    assert s.skipped == {"image without captions": 1} and s.images.shape == (3, 3, 4, 4)
    kept = [i for i, name in enumerate(s.names) if name in COLOURS]
    assert_solid(s.images[kept], [s.names[i] for i in kept])
    assert (s.images[s.names.index("sub/green.png"), 1] == 255).all()
    (folder / "metadata.jsonl").unlink()
    (folder / "sub" / "green.png").unlink()
    write_metadata(folder, [{"file_name": n, "caption": n.split(".")[0]} for n in COLOURS], kind="csv")
    s = load_caption_split(data, "valid", cache=tmp_path / "cache2")
    assert sorted(s.names) == sorted(COLOURS) and all(c == [[n.split(".")[0]]] for n, c in zip(s.names, s.captions))


def test_imagefolder_errors(tmp_path, folder):
    data = {"format": "imagefolder", "train": {"images": str(folder)}}
    write_metadata(folder, [{"file_name": n, "captions": ["ok"]} for n in (*COLOURS, "broken.png")])
    with pytest.raises(ValueError, match=r"images: image broken.png: .*broken.png: not a readable image"):
        load_caption_split(data, "train", cache=tmp_path / "c1")
    s = load_caption_split({**data, "on_error": "skip"}, "train", cache=tmp_path / "c2")
    assert s.skipped == {"unreadable image": 1} and len(s) == 3 and s.images.shape[2:] == (224, 224)
    write_metadata(folder, [{"file_name": n, "captions": ["ok", "?!"]} for n in (*COLOURS, "broken.png")])
    with pytest.raises(ValueError, match=r"image \w+\.\w+: caption 1 is empty"):
        load_caption_split(data, "train", cache=tmp_path / "c3")
    write_metadata(folder, [{"file_name": n, "text": "ok"} for n in (*COLOURS, "broken.png")])
    with pytest.raises(ValueError, match="metadata needs a 'captions' .* columns are image, text"):
        load_caption_split(data, "train", cache=tmp_path / "c4")


def test_user_format_config_errors(tmp_path, folder):
    with pytest.raises(ValueError, match="data.valid must be a mapping with captions, images for format coco"):
        load_caption_split({"format": "coco", "train": {}}, "valid")
    with pytest.raises(FileNotFoundError, match="nope.json: captions file not found"):
        load_caption_split({"format": "coco", "train": {"captions": str(tmp_path / "nope.json"),
                                                        "images": str(folder)}}, "train")
    with pytest.raises(ValueError, match="data.on_error must be one of raise, skip"):
        load_caption_split({"format": "coco", "on_error": "ignore"}, "train")
