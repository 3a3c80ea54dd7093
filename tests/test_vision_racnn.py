"""RA-CNN (Fu et al., 2017): the boxcar mask against a hand computation, crop-and-zoom, the ranking loss by
hand, the alternating phases updating only their own parameters, the regions captured, and training through
the Trainer (region figure, exact resume of the phase counter)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _vision_runs import bar_digits_npz, resumed_equals_uninterrupted

from seq2seq_attn.attention import capture_attention
from vision.models.racnn import RecurrentAttentionCNN, boxcar_mask, crop_and_zoom, plot_regions, ranking_loss


def test_boxcar_mask_matches_a_hand_computation():
    box = torch.tensor([[0.25, -0.5, 0.5]])  # on 4 (H) x 8 (W): centre x = 1.25 * 4 = 5, y = 0.5 * 2 = 1
    mask = boxcar_mask(box, 4, 8, k=2.0)
    h = lambda z: 1 / (1 + math.exp(-2.0 * z))  # noqa: E731
    x_tl, x_br, y_tl, y_br = 5 - 2, 5 + 2, 1 - 1, 1 + 1  # half-side 0.5 * 8 / 2 = 2 px, 0.5 * 4 / 2 = 1 px
    for i in range(4):
        for j in range(8):
            x, y = j + 0.5, i + 0.5
            want = (h(x - x_tl) - h(x - x_br)) * (h(y - y_tl) - h(y - y_br))
            assert abs(float(mask[0, i, j]) - want) < 1e-6
    sharp = boxcar_mask(box, 4, 8, k=200.0)[0]
    expected = torch.zeros(4, 8)
    expected[0:2, 3:7] = 1.0  # pixels whose centres lie inside x in (3, 7), y in (0, 2)
    torch.testing.assert_close(sharp, expected)


def test_crop_and_zoom_cuts_the_square_and_passes_gradients_through_the_mask():
    img = torch.arange(64.0).view(1, 1, 8, 8)
    whole = crop_and_zoom(img, torch.tensor([[0.0, 0.0, 1.0]]), 8, k=200.0)
    torch.testing.assert_close(whole, img)  # the whole image, at its own size
    quarter = crop_and_zoom(img, torch.tensor([[-0.5, -0.5, 0.5]]), 4, k=200.0)
    torch.testing.assert_close(quarter, img[..., :4, :4])  # the top-left quarter, one output pixel per pixel
    box = torch.tensor([[0.1, -0.2, 0.45]], requires_grad=True)
    crop_and_zoom(torch.rand(1, 1, 12, 12), box, 6, k=1.0).sum().backward()
    assert torch.isfinite(box.grad).all() and box.grad.abs().sum() > 0


def test_ranking_loss_by_hand():
    labels = torch.tensor([0, 1])
    p1 = torch.tensor([[0.5, 0.5], [0.8, 0.2]])  # true-class probabilities 0.5 and 0.2
    p2 = torch.tensor([[0.3, 0.7], [0.4, 0.6]])  # 0.3 and 0.6
    p3 = torch.tensor([[0.32, 0.68], [0.5, 0.5]])  # 0.32 and 0.5
    loss = ranking_loss([p1.log(), p2.log(), p3.log()], labels, margin=0.05)
    # max(0, .5 - .3 + .05) + max(0, .2 - .6 + .05) + max(0, .3 - .32 + .05) + max(0, .6 - .5 + .05)
    torch.testing.assert_close(loss, torch.tensor(0.25 + 0.0 + 0.03 + 0.15))


def _model(**kwargs):
    torch.manual_seed(0)
    defaults = dict(scales=3, widths=(4, 8), zoom=12, k=1.0, apn_hidden=8, apn_pool=2, warmup=1, alternate_every=1)
    return RecurrentAttentionCNN(3, 1, **{**defaults, **kwargs})


def _step(model, x, y):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    extra, logs = model.auxiliary_loss(logits, y)
    (F.cross_entropy(logits, y, reduction="sum") + extra).backward()
    return logs


def test_alternating_phases_update_only_their_own_parameters():
    model = _model().train()
    x, y = torch.rand(4, 1, 24, 24), torch.tensor([0, 1, 2, 0])
    groups = {"apn": list(model.apns.parameters()), "cnn": [*model.cnns.parameters(), *model.fusion.parameters()]}
    for step, phase in enumerate(["cnn", "apn", "cnn", "apn"]):  # warmup 1, then apn / cnn every step
        assert model.phase() == phase and int(model.steps) == step
        logs = _step(model, x, y)
        assert logs["apn_phase"] == float(phase == "apn")
        other = "cnn" if phase == "apn" else "apn"
        assert all(p.grad is None for p in groups[other]), f"{phase} phase: {other} parameters got gradients"
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in groups[phase])
        assert sum(float(p.grad.abs().sum()) for p in groups[phase]) > 0
    assert model.auxiliary_loss(model(x), y) is not None and model.auxiliary_loss(model(x), y) is not None
    model.eval()
    model(x)
    assert model.auxiliary_loss(model(x), y) is None  # evaluation keeps nothing, counts nothing
    assert int(model.steps) == 6


def test_regions_are_captured_in_image_coordinates(tmp_path):
    model = _model().eval()
    x = torch.rand(2, 1, 24, 24)
    with capture_attention(model) as maps:
        model(x)
    (regions,) = maps[""]
    assert regions.shape == (2, 2, 3) and not regions.requires_grad
    # at initialization every APN proposes the centred square of half-side 0.5 of its input
    torch.testing.assert_close(regions[:, 0], torch.tensor([0.0, 0.0, 0.5]).expand(2, 3))
    torch.testing.assert_close(regions[:, 1], torch.tensor([0.0, 0.0, 0.25]).expand(2, 3))
    assert plot_regions(x, regions, tmp_path / "r.png", ["a", "b"]).stat().st_size > 1000
    with pytest.raises(ValueError, match="scales must be >= 2"):
        RecurrentAttentionCNN(3, 1, scales=1)


def _tiny_racnn_config(tmp_path, run="run"):
    """The bar digits (tests/_vision_runs.py), the cluttered 60x60 variant, a tiny RA-CNN."""
    npz = bar_digits_npz(tmp_path)
    config = tmp_path / f"{run}.yaml"
    config.write_text(f"""
data: {{path: {npz}, variant: cluttered, mean: [0.0], std: [1.0], augment: false, batch_size: 8}}
model: {{arch: racnn, racnn: {{scales: 2, widths: [4, 8], zoom: 16, k: 1.0, apn_hidden: 8, apn_pool: 2, warmup: 1,
        alternate_every: 1}}}}
training: {{run_dir: {tmp_path / run}, device: cpu, cpu_threads: 1, lr: 0.003, max_epochs: 2, metric: acc,
           metric_mode: max, log_every: 1, progress: false, save_every: 2}}
""", encoding="utf-8")
    return config


def test_racnn_trains_through_the_trainer_draws_its_regions_and_resumes_exactly(tmp_path, monkeypatch):
    """The phase counter (a buffer) is saved and resumed with the weights: the resumed run alternates exactly
    as the uninterrupted one."""
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    weights = resumed_equals_uninterrupted(tmp_path, _tiny_racnn_config, steps=5, stop=3)
    assert int(weights["steps"]) == 5
    assert (tmp_path / "whole" / "racnn_regions.png").stat().st_size > 1000


def test_explore_draws_each_region_as_the_boxcar_mask_it_crops_with():
    import base64

    import numpy as np

    from seq2seq_attn.explore.vision import module_maps

    model = _model(k=2.0).eval()
    x = torch.rand(1, 1, 24, 24)
    logits, entries = module_maps(model, x)
    assert logits.shape == (1, 3)
    assert [e["name"] for e in entries] == ["region of scale 2", "region of scale 3"]
    # at initialization: centred squares of half-side 0.5 and 0.25 ([-1, 1] units), i.e. 12 and 6 pixels wide
    for entry, half in zip(entries, (0.5, 0.25)):
        assert entry["kind"] == "spatial" and (entry["h"], entry["w"]) == (24, 24)
        drawn = np.frombuffer(base64.b64decode(entry["data"]), dtype=np.uint8).reshape(24, 24) / 255.0
        mask = boxcar_mask(torch.tensor([[0.0, 0.0, half]]), 24, 24, 2.0)[0].numpy()
        expected = (mask - mask.min()) / (mask.max() - mask.min())  # the page scales each map to its range
        np.testing.assert_allclose(drawn, expected, atol=1 / 255)
        inside = slice(12 - int(half * 12) + 1, 12 + int(half * 12) - 1)
        assert drawn[inside, inside].min() > 0.5 and drawn[0, 0] < 0.05
