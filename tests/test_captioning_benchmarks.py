"""The built-in captioning sets (digit strings, CIFAR-10 mosaics): generator logic on synthetic digits and
tiles, the cache, determinism, the split pools, resizing with boxes; the real shared data when present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq2seq_attn.captioning.benchmarks import (
    DIGIT_WORDS,
    assemble_mosaics,
    ink_boxes,
    make_digit_strings,
    make_mosaics,
)
from seq2seq_attn.captioning.data import CaptionSet, load_caption_split, tokenize


def synthetic_digits(m: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(m, 28, 28) digits: digit i is a filled rectangle at a position of its own, value 10 * label + 5."""
    rng = np.random.default_rng(0)
    digits = np.zeros((m, 28, 28), dtype=np.uint8)
    labels = np.arange(m) % 10
    for i in range(m):
        y0, x0 = rng.integers(0, 14, 2)
        y1, x1 = y0 + rng.integers(3, 14), x0 + rng.integers(3, 14)
        digits[i, y0:y1, x0:x1] = 10 * labels[i] + 5
    return digits, labels


def test_ink_boxes_are_tight_and_an_empty_image_gets_the_whole_image():
    digits = np.zeros((2, 28, 28), dtype=np.uint8)
    digits[0, 5:9, 10:20] = 200
    digits[0, 12, 3] = 1
    assert ink_boxes(digits).tolist() == [[3, 5, 20, 13], [0, 0, 28, 28]]


def test_digit_strings_place_digits_left_to_right_with_their_ink_boxes():
    digits, labels = synthetic_digits()
    images, words, boxes = make_digit_strings(digits, labels, 40, np.random.default_rng(3), (48, 160), 3, 5)
    assert images.shape == (40, 48, 160) and words.shape == (40, 5) and boxes.shape == (40, 5, 4)
    counts = (words >= 0).sum(axis=1)
    assert counts.min() == 3 and counts.max() == 5
    for img, ws, bs, k in zip(images, words, boxes, counts, strict=True):
        assert (ws[k:] == -1).all() and (bs[k:] == -1).all()
        covered = np.zeros_like(img, dtype=bool)
        for w, (x0, y0, x1, y1) in zip(ws[:k], bs[:k], strict=True):
            patch = img[y0:y1, x0:x1]
            assert (patch[[0, -1], :] > 0).any(axis=1).all() and (patch[:, [0, -1]] > 0).any(axis=0).all()  # tight
            assert set(np.unique(patch)) <= {0, 10 * w + 5}  # the box holds its own digit's ink only
            covered[y0:y1, x0:x1] = True
        assert not img[~covered].any()  # all ink inside the boxes
        assert (np.diff(bs[:k, 0]) > 0).all()  # left to right
    again = make_digit_strings(digits, labels, 40, np.random.default_rng(3), (48, 160), 3, 5)
    assert all(np.array_equal(a, b) for a, b in zip((images, words, boxes), again, strict=True))


def test_digit_strings_reject_a_canvas_too_small():
    digits, labels = synthetic_digits()
    with pytest.raises(ValueError, match="cannot hold 5 digits"):
        make_digit_strings(digits, labels, 1, np.random.default_rng(0), (48, 139), 3, 5)
    with pytest.raises(ValueError, match="min_digits"):
        make_digit_strings(digits, labels, 1, np.random.default_rng(0), (48, 160), 4, 3)


def test_mosaics_put_each_tile_in_its_quadrant_in_reading_order():
    tiles = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 4, 5), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2])
    images, words, boxes, src = make_mosaics(tiles, labels, 7, np.random.default_rng(1))
    assert images.shape == (7, 3, 8, 10)
    for img, ws, s in zip(images, words, src, strict=True):
        quadrants = [img[:, :4, :5], img[:, :4, 5:], img[:, 4:, :5], img[:, 4:, 5:]]
        assert [int(q.max()) for q in quadrants] == [int(i) for i in s] == [int(q.min()) for q in quadrants]
        assert ws.tolist() == labels[s].tolist()
    assert boxes[0].tolist() == [[0, 0, 5, 4], [5, 0, 10, 4], [0, 4, 5, 8], [5, 4, 10, 8]]
    assert np.array_equal(assemble_mosaics(tiles, src), images)


def write_sources(tmp_path):
    """A tiny MNIST-like and a CIFAR-like .npz whose every source image is one distinct constant value."""
    digits, labels = synthetic_digits(40)
    test_digits, test_labels = synthetic_digits(20)
    np.savez(tmp_path / "digits.npz", x_train=digits, y_train=labels, x_test=test_digits, y_test=test_labels)
    tiles = (np.arange(60, dtype=np.uint8) + 1)[:, None, None, None] * np.ones((1, 6, 6, 3), dtype=np.uint8)
    classes = np.array(["cat", "dog", "ship"])
    np.savez(tmp_path / "tiles.npz", x_train=tiles[:40], y_train=np.arange(40) % 3, x_test=tiles[40:],
             y_test=np.arange(20) % 3, classes=classes)
    return tmp_path / "digits.npz", tmp_path / "tiles.npz"


def test_digit_strings_load_cached_and_bit_identical(tmp_path):
    digits, _ = write_sources(tmp_path)
    data = {"format": "digit_strings", "source": str(digits), "train_size": 12, "valid_size": 5, "test_size": 6,
            "holdout": 10, "seed": 4}
    first = load_caption_split(data, "train", cache=tmp_path / "cache")
    files = list((tmp_path / "cache" / "captioning").iterdir())
    assert len(files) == 1
    again = load_caption_split(data, "train", cache=tmp_path / "cache")  # from the cache
    fresh = load_caption_split(data, "train", cache=tmp_path / "other")  # generated again
    for other in (again, fresh):
        assert torch.equal(first.images, other.images)
        assert first.captions == other.captions and first.boxes == other.boxes and first.names == other.names
    assert isinstance(first, CaptionSet) and first.images.shape == (12, 1, 48, 160) and first.skipped == {}
    assert all(len(caps) == 1 and 3 <= len(caps[0]) <= 5 and set(caps[0]) <= set(DIGIT_WORDS)
               for caps in first.captions)
    other_seed = load_caption_split({**data, "seed": 5}, "train", cache=tmp_path / "cache")
    assert not torch.equal(first.images, other_seed.images)
    assert len(load_caption_split(data, "test", cache=tmp_path / "cache")) == 6


def test_resizing_scales_the_boxes(tmp_path):
    digits, _ = write_sources(tmp_path)
    data = {"format": "digit_strings", "source": str(digits), "test_size": 4, "seed": 1}
    full = load_caption_split(data, "test", cache=tmp_path)
    half = load_caption_split({**data, "image_size": [24, 40]}, "test", cache=tmp_path)
    assert half.images.shape == (4, 1, 24, 40) and half.images.dtype == torch.uint8
    for caps_full, caps_half in zip(full.boxes, half.boxes, strict=True):
        for (x0, y0, x1, y1), box in zip(caps_full[0], caps_half[0], strict=True):
            assert box == pytest.approx((x0 / 4, y0 / 2, x1 / 4, y1 / 2))
    # antialiased downscaling keeps each image's mean brightness (a plain bilinear sample of thin strokes would not)
    assert torch.allclose(half.images.float().mean(dim=(1, 2, 3)), full.images.float().mean(dim=(1, 2, 3)), atol=0.5)


def test_mosaic_splits_draw_from_disjoint_pools(tmp_path):
    _, tiles = write_sources(tmp_path)
    data = {"format": "cifar_mosaics", "source": str(tiles), "train_size": 50, "valid_size": 20, "test_size": 20,
            "holdout": 8}
    values = {}
    for split in ("train", "valid", "test"):
        s = load_caption_split(data, split, cache=tmp_path)
        assert s.images.shape[1:] == (3, 12, 12)
        assert all(len(caps[0]) == 4 and set(caps[0]) <= {"cat", "dog", "ship"} for caps in s.captions)
        assert s.boxes[0][0] == [(0.0, 0.0, 6.0, 6.0), (6.0, 0.0, 12.0, 6.0), (0.0, 6.0, 6.0, 12.0),
                                 (6.0, 6.0, 12.0, 12.0)]
        values[split] = set(torch.unique(s.images).tolist())
        # each tile's value v is source image v - 1, of class (v - 1) % 3 within its split's file
        tiles_of_first = [int(s.images[0, 0, y, x]) for y, x in ((0, 0), (0, 6), (6, 0), (6, 6))]
        names = ["cat", "dog", "ship"]
        offset = 40 if split == "test" else 0
        assert s.captions[0][0] == [names[(v - 1 - offset) % 3] for v in tiles_of_first]
    assert len(values["valid"]) <= 8 and not values["valid"] & values["train"]
    assert values["test"] <= set(range(41, 61)) and (values["train"] | values["valid"]) <= set(range(1, 41))
    cached = load_caption_split(data, "valid", cache=tmp_path)  # the images rebuilt from the stored indices
    assert set(torch.unique(cached.images).tolist()) == values["valid"]


def test_benchmark_config_errors_name_the_key(tmp_path):
    digits, _ = write_sources(tmp_path)
    base = {"format": "digit_strings", "source": str(digits), "holdout": 10}
    cases = [({"format": "mnist"}, "data.format"), ({**base, "image_size": [0, 5]}, "data.image_size"),
             ({**base, "canvas": [48]}, "data.canvas"), ({**base, "seed": -1}, "data.seed"),
             ({**base, "holdout": 40}, "data.holdout"), ({**base, "valid_size": 0}, "data.valid_size"),
             ({**base, "canvas": [48, 100]}, "data.canvas 48x100 cannot hold 5"),
             ({**base, "min_digits": 6}, "data.min_digits")]
    for data, message in cases:
        with pytest.raises(ValueError, match=message):
            load_caption_split(data, "valid", cache=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_caption_split(base, "dev", cache=tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_caption_split({**base, "source": str(tmp_path / "missing.npz")}, "test", cache=tmp_path)


def test_tokenize_lower_cases_and_deletes_punctuation():
    assert tokenize("  A dog's ball, RED.\tJumps!  ") == ["a", "dogs", "ball", "red", "jumps"]
    assert tokenize("«Ein Hund» – läuft…") == ["ein", "hund", "läuft"]
    assert tokenize(" ... ") == []


@pytest.mark.shared_data
def test_shared_mnist_digit_strings_are_deterministic(shared_data, tmp_path):
    data = {"format": "digit_strings", "test_size": 30, "seed": 7}
    first = load_caption_split(data, "test", cache=tmp_path / "a")
    second = load_caption_split(data, "test", cache=tmp_path / "b")
    assert torch.equal(first.images, second.images) and first.captions == second.captions
    assert first.boxes == second.boxes
    img = first.images[0, 0]
    covered = torch.zeros_like(img, dtype=torch.bool)
    for x0, y0, x1, y1 in first.boxes[0][0]:
        assert 14 <= x1 - x0 <= 28 or first.captions[0][0][first.boxes[0][0].index((x0, y0, x1, y1))] == "one"
        covered[int(y0):int(y1), int(x0):int(x1)] = True
    assert not img[~covered].any()


@pytest.mark.shared_data
def test_shared_cifar10_mosaics_use_the_class_names(shared_data):
    s = load_caption_split({"format": "cifar_mosaics", "test_size": 5}, "test")  # the session cache: decoded once
    classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert s.images.shape == (5, 3, 64, 64) and all(set(c[0]) <= classes and len(c[0]) == 4 for c in s.captions)
