"""IAU (Hou et al., 2020): shapes, identity at initialization, gradients, the neighbour mask, the weights
captured, the temporal part mixing frames (and the per-frame ablation and the baseline not), the clip benchmark
(deterministic, labels from the cued side) and the clip network trained through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _vision_runs import randomize_zero_parameters

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.cli import main
from vision.attention.iau import IAUBlock, neighbour_mask
from vision.clips import CUE, FRAMES, HEIGHT, WIDTH, make_clips
from vision.models.clipnet import ClipNet


def test_identity_at_initialization_and_shapes():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 5, 6)
    block = IAUBlock(8, parts=4)
    torch.testing.assert_close(block(x), x)
    y = randomize_zero_parameters(block)(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    assert IAUBlock(8, channel=False)(x).shape == x.shape and IAUBlock(8, spatial_temporal=False)(x).shape == x.shape
    with pytest.raises(ValueError, match="needs its channel part"):
        IAUBlock(8, channel=False, spatial_temporal=False)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        block(torch.randn(2, 8, 5, 6))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    block = randomize_zero_parameters(IAUBlock(8, parts=3)).train()
    x = torch.randn(2, 3, 8, 4, 5, requires_grad=True)
    (block(x) * torch.randn(2, 3, 8, 4, 5)).sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_neighbour_mask_by_hand():
    # nodes (t, n) in the order (0,0) (0,1) (1,0) (1,1); allowed: other part same frame, same part other frame
    allowed = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(neighbour_mask(2, 2), ~allowed)
    spatial_only = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(neighbour_mask(2, 2, temporal=False), ~spatial_only)


def test_weights_are_captured_and_respect_the_neighbours():
    block = randomize_zero_parameters(IAUBlock(6, parts=2)).eval()
    with capture_attention(block) as maps:
        block(torch.randn(2, 3, 6, 4, 4))
    channel, parts = maps["ciau.attention"][0], maps["stiau.attention"][0]
    assert channel.shape == (2, 18, 18) and parts.shape == (2, 6, 6)
    torch.testing.assert_close(parts.sum(-1), torch.ones(2, 6))
    assert (parts[:, neighbour_mask(3, 2)] == 0).all()


def _frame_changes(fn, x: torch.Tensor) -> list[bool]:
    """Whether each frame of fn's output (B, T, ...) changes when only the last input frame changes."""
    changed = x.clone()
    changed[:, -1] += torch.randn_like(changed[:, -1])
    with torch.no_grad():
        a, b = fn(x), fn(changed)
    return [not torch.allclose(a[:, t], b[:, t]) for t in range(x.shape[1] - 1)]


def test_the_temporal_part_mixes_frames_and_the_ablation_and_baseline_do_not():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 4, 4)
    assert all(_frame_changes(randomize_zero_parameters(IAUBlock(6, parts=2)).eval(), x))
    for channel, spatial_temporal in ((True, False), (False, True)):  # each part mixes frames on its own
        block = IAUBlock(6, parts=2, channel=channel, spatial_temporal=spatial_temporal)
        block = randomize_zero_parameters(block).eval()
        assert all(_frame_changes(block, x))
    assert not any(_frame_changes(randomize_zero_parameters(IAUBlock(6, parts=2, temporal=False)).eval(), x))
    clips = torch.randn(2, 3, 16, 16)
    with_iau = randomize_zero_parameters(ClipNet(4, 3, widths=(4, 6), parts=2)).eval()
    baseline = randomize_zero_parameters(ClipNet(4, 3, widths=(4, 6), iau=False)).eval()
    assert all(_frame_changes(with_iau.frame_features, clips))
    assert not any(_frame_changes(baseline.frame_features, clips))
    assert with_iau(clips).shape == baseline(clips).shape == (2, 4)


def _digits(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Digit i: a 20x12 block of intensity 10 (label + 1), so a frame shows which classes it holds."""
    labels = np.arange(n) % 5
    digits = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, y in enumerate(labels):
        digits[i, 4:24, 8:20] = 10 * (y + 1)
    return digits, labels


def test_clips_are_deterministic_and_labelled_by_the_cued_side():
    digits, labels = _digits()
    x, y = make_clips(digits, labels, seed=3)
    x2, y2 = make_clips(digits, labels, seed=3)
    assert x.shape == (20, FRAMES, HEIGHT, WIDTH) and x.dtype == np.uint8 and np.array_equal(x, x2)
    assert np.array_equal(y, y2) and not np.array_equal(x, make_clips(digits, labels, seed=4)[0])
    half = WIDTH // 2
    for clip, label in zip(x, y):
        cue = [f for f in range(FRAMES) if (clip[f] == 255).any()]
        assert len(cue) == 1 and (clip[cue[0]] == 255).sum() == CUE * CUE  # one cue frame, no digit in it
        side = slice(half, None) if (clip[cue[0], :, half:] == 255).any() else slice(0, half)
        other = slice(0, half) if side.start == half else slice(half, None)
        for f in range(FRAMES):
            if f != cue[0]:
                assert set(np.unique(clip[f, :, side])) == {0, 10 * (label + 1)}  # the cued digit, moving
                assert 10 * (label + 1) not in np.unique(clip[f, :, other])  # the other digit's class differs
    with pytest.raises(ValueError, match="two classes"):
        make_clips(digits, np.zeros(20), 0)


def test_clip_network_trains_through_the_trainer(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    digits, labels = _digits(30)
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=digits[:20], y_train=labels[:20], x_test=digits[20:], y_test=labels[20:])
    config = tmp_path / "clips.yaml"
    config.write_text(f"""
data: {{path: {npz}, variant: clips, mean: [0.0, 0.0, 0.0, 0.0], std: [1.0, 1.0, 1.0, 1.0], augment: false,
       batch_size: 5}}
model: {{arch: clipnet, clip: {{widths: [4, 6], parts: 2}}}}
training: {{run_dir: {tmp_path / 'run'}, device: cpu, cpu_threads: 1, max_steps: 3, metric: acc, metric_mode: max,
           log_every: 1, progress: false}}
""", encoding="utf-8")
    assert main(["vision", "train", str(config)]) == 0
    assert (tmp_path / "run" / "test_metrics.json").is_file()
    assert len(list((tmp_path / "cache" / "vision").glob("digits-*-clips-train-s0-v1.x.npy"))) == 1
