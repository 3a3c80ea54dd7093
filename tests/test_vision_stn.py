"""Spatial transformer networks (Jaderberg et al., 2015): identity at initialization, a hand-checked warp, the
sampling grid captured and its quadrilateral, gradients, the rotated/RTS MNIST variants, and an ST-CNN trained
through the Trainer (sampling-grid figure, exact resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _vision_runs import bar_digits_npz, resumed_equals_uninterrupted

from seq2seq_attn.attention import capture_attention
from vision import create_attention
from vision.attention.stn import SpatialTransformer, grid_corners
from vision.mnist_variants import WARPS, make_variant
from vision.models.stn import SpatialTransformerNetwork, plot_sampling_grids


def test_identity_at_initialization_and_as_a_registered_stage_module():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 13)
    st = SpatialTransformer(3, loc_channels=(4, 5), loc_hidden=8)
    torch.testing.assert_close(st(x), x, rtol=0, atol=1e-5)
    module = create_attention("stn", 3, loc_channels=[4, 5], loc_hidden=8)
    torch.testing.assert_close(module(x), x, rtol=0, atol=1e-5)
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 9 * 13, 4))
    net = SpatialTransformerNetwork(st, classifier)
    torch.testing.assert_close(net(x), classifier(x))
    with pytest.raises(ValueError, match="padding_mode"):
        SpatialTransformer(3, padding_mode="wrap")


def test_a_one_pixel_shift_and_the_output_size():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    st = SpatialTransformer(1, loc_channels=(2, 2), loc_hidden=2)
    with torch.no_grad():
        st.localisation[-1].bias.copy_(torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 0.0]))  # x + 2/W: one pixel right
    out = st(img)
    want = torch.cat([img[..., 1:], torch.zeros(1, 1, 4, 1)], -1)  # output column j reads input column j+1
    torch.testing.assert_close(out, want)
    small = SpatialTransformer(1, loc_channels=(2, 2), loc_hidden=2, out_size=(2, 3))
    assert small(img).shape == (1, 1, 2, 3)


def test_grid_is_captured_and_its_corners_are_the_warped_region():
    st = SpatialTransformer(1, loc_channels=(2, 2), loc_hidden=2, out_size=(5, 4))
    x = torch.rand(2, 1, 10, 8)
    with capture_attention(st) as maps:
        st(x)
    (grid,) = maps[""]
    assert grid.shape == (2, 5, 4, 2) and not grid.requires_grad
    square = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    torch.testing.assert_close(grid_corners(grid), square.expand(2, 4, 2))
    # half size around (0.2, -0.4): x' = 0.5 x + 0.2, y' = 0.5 y - 0.4
    with torch.no_grad():
        st.localisation[-1].bias.copy_(torch.tensor([0.5, 0.0, 0.2, 0.0, 0.5, -0.4]))
    with capture_attention(st) as maps:
        st(x)
    want = square * 0.5 + torch.tensor([0.2, -0.4])
    torch.testing.assert_close(grid_corners(maps[""][0]), want.expand(2, 4, 2))


def test_gradients_reach_the_localisation_network():
    torch.manual_seed(0)
    st = SpatialTransformer(1, loc_channels=(3, 3), loc_hidden=6)
    x = torch.rand(2, 1, 12, 12, requires_grad=True)
    (st(x) * torch.randn(2, 1, 12, 12)).sum().backward()
    last = st.localisation[-1]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def _digits(n=6):
    rng = np.random.default_rng(0)
    digits = np.zeros((n, 28, 28), dtype=np.uint8)
    digits[:, 6:22, 11:17] = rng.integers(100, 256, (n, 16, 6))
    return digits


def test_rotated_and_rts_variants_are_deterministic_and_keep_the_digit():
    digits = _digits()
    for name, (size, _, (lo, hi), _) in WARPS.items():
        a, b = make_variant(digits, name, 3), make_variant(digits, name, 3)
        assert a.shape == (6, size, size) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert not np.array_equal(a, make_variant(digits, name, 4))
        ink = a.reshape(6, -1).astype(float).sum(1) / digits.reshape(6, -1).astype(float).sum(1)
        # bilinear resampling keeps the ink (area) up to rounding: x scale² (1 for rotated)
        assert (ink > 0.9 * lo ** 2).all() and (ink < 1.1 * hi ** 2).all()
    rotated = make_variant(digits, "rotated", 3)
    assert not np.array_equal(rotated, digits)
    # the bar's ink stays centred on the 28x28 canvas (rotation about the centre)
    rows, cols = np.nonzero(rotated[0])
    assert abs(rows.mean() - 13.5) < 1.5 and abs(cols.mean() - 13.5) < 1.5


def test_sampling_grid_figure(tmp_path):
    images = torch.rand(3, 1, 20, 20)
    grids = torch.nn.functional.affine_grid(torch.tensor([[[0.5, 0.1, 0.2], [0.0, 0.6, -0.1]]]).expand(3, 2, 3),
                                            [3, 1, 10, 10], align_corners=False)
    path = plot_sampling_grids(images, grids, torch.rand(3, 1, 10, 10), tmp_path / "g.png", ["a", "b", "c"])
    assert path.stat().st_size > 1000


def _tiny_stn_config(tmp_path, run="run"):
    """The bar digits (tests/_vision_runs.py), the RTS variant, a tiny ST-CNN."""
    npz = bar_digits_npz(tmp_path)
    config = tmp_path / f"{run}.yaml"
    config.write_text(f"""
data: {{path: {npz}, variant: rts, mean: [0.0], std: [1.0], augment: false, batch_size: 8}}
model: {{arch: small, widths: [4, 8], blocks: [1, 1], stem_stride: 2,
        spatial_transformer: {{enabled: true, out_size: [28, 28], loc_channels: [4, 4], loc_hidden: 8}}}}
training: {{run_dir: {tmp_path / run}, device: cpu, cpu_threads: 1, lr: 0.003, max_epochs: 2, metric: acc,
           metric_mode: max, log_every: 1, progress: false, save_every: 2}}
""", encoding="utf-8")
    return config


def test_st_cnn_trains_through_the_trainer_draws_its_grids_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    weights = resumed_equals_uninterrupted(tmp_path, _tiny_stn_config, steps=4, stop=2)
    assert any(k.startswith("transformer.localisation") for k in weights)
    assert (tmp_path / "whole" / "stn_grids.png").stat().st_size > 1000
