"""Captioning's training augmentation: each word's box mirrored in place (CIFAR-10 mosaics' tiles), a random
shift of the whole image, both drawn from the batch (same batch, same images; exact resume), and refused for
data without boxes."""

from __future__ import annotations

import pytest
import torch
from _caption_tiny import tiny_set
from safetensors.torch import load_file

from seq2seq_attn.captioning.config import CaptionConfig
from seq2seq_attn.captioning.data import flip_boxes
from seq2seq_attn.captioning.task import CaptionTask
from seq2seq_attn.config import from_dict
from seq2seq_attn.training import run_training


def config(run_dir, steps: int = 2, **top) -> CaptionConfig:
    return from_dict(CaptionConfig, {
        "data": {}, "batch_size": 4,
        "model": {"encoder": {"widths": [8, 16]}, "decoder": {"emb_dim": 16, "hidden": 32, "dropout": 0.1}},
        "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1, "lr": 0.01, "max_steps": steps,
                     "max_epochs": 1000, "log_every": 1, "eval_every": 100, "save_every": 3, "progress": False,
                     "metric": "word_acc", "metric_mode": "max", "tensorboard": False}} | top)


def test_flip_boxes_mirrors_each_box_or_leaves_it_and_nothing_else():
    images = torch.arange(2 * 1 * 4 * 8, dtype=torch.uint8).reshape(2, 1, 4, 8)  # every pixel distinct
    boxes = [[(0, 0, 4, 4), (4, 0, 8, 4), (4, 0, 8, 4)], [(2, 1, 6, 3), None]]  # a repeated box: one draw
    outcomes = set()
    for seed in range(40):
        out = flip_boxes(images, boxes, torch.Generator().manual_seed(seed))
        state = []
        for b, (x0, y0, x1, y1) in [(0, (0, 0, 4, 4)), (0, (4, 0, 8, 4)), (1, (2, 1, 6, 3))]:
            region, orig = out[b, :, y0:y1, x0:x1], images[b, :, y0:y1, x0:x1]
            assert torch.equal(region, orig) or torch.equal(region, orig.flip(-1))
            state.append(torch.equal(region, orig.flip(-1)))
        outside = out[1].clone()
        outside[:, 1:3, 2:6] = images[1, :, 1:3, 2:6]
        assert torch.equal(outside, images[1])  # pixels outside the boxes never move
        outcomes.add(tuple(state))
    assert len(outcomes) == 8  # each box flips independently, with both outcomes
    again = flip_boxes(images, boxes, torch.Generator().manual_seed(3))
    assert torch.equal(again, flip_boxes(images, boxes, torch.Generator().manual_seed(3)))
    assert torch.equal(images, torch.arange(64, dtype=torch.uint8).reshape(2, 1, 4, 8))  # input untouched


def test_collate_augments_training_batches_from_the_batch_only(tmp_path):
    data = tiny_set(8)
    plain = CaptionTask(config(tmp_path / "a"), data=(data, data), log=lambda _: None)
    task = CaptionTask(config(tmp_path / "b", crop_padding=2, flip_boxes=True), data=(data, data),
                       log=lambda _: None)
    assert torch.equal(plain.collate([0, 1, 2, 3])["images"], data.images[:4])  # off by default
    first, second = task.collate([0, 1, 2, 3]), task.collate([0, 1, 2, 3])
    assert torch.equal(first["images"], second["images"])  # a batch's augmentation is fixed by the batch
    assert torch.equal(first["tgt_out"], plain.collate([0, 1, 2, 3])["tgt_out"])  # captions unchanged
    shifted = CaptionTask(config(tmp_path / "c", crop_padding=2), data=(data, data), log=lambda _: None)
    out = shifted.collate(list(range(8)))["images"]
    for b in range(8):  # each image is a shift of the original by at most 2 pixels, zero-filled
        padded = torch.nn.functional.pad(data.images[b], (2, 2, 2, 2))
        assert any(torch.equal(out[b], padded[:, dy:dy + 16, dx:dx + 48]) for dy in range(5) for dx in range(5))


def test_flip_boxes_without_boxes_is_refused_and_negative_padding_too(tmp_path):
    with pytest.raises(ValueError, match="flip_boxes"):
        CaptionTask(config(tmp_path / "a", flip_boxes=True), data=(tiny_set(4, boxes=False),) * 2)
    with pytest.raises(ValueError, match="crop_padding"):
        config(tmp_path / "b", crop_padding=-1)


def test_resume_is_exact_with_augmentation(tmp_path):
    data = tiny_set(8)

    def train(name: str, steps: int, resume: bool = False) -> None:
        threads = torch.get_num_threads()
        cfg = config(tmp_path / name, steps, crop_padding=3, flip_boxes=True)
        try:
            assert run_training(CaptionTask(cfg, data=(data, data), log=lambda _: None), cfg.training, cfg,
                                resume=resume) == 0
        finally:
            torch.set_num_threads(threads)

    train("whole", 6)
    train("parts", 3)
    train("parts", 6, resume=True)
    a = load_file(tmp_path / "whole" / "checkpoints" / "step-000006.safetensors")
    b = load_file(tmp_path / "parts" / "checkpoints" / "step-000006.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
