"""RAM's glimpse policies that are not learned (``model.recurrent.policy``): the paper's random glimpses and a
scan around the inkiest window, which asks how the rest of RAM does when its glimpses are on the object."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.training.lifecycle import load_task_config
from vision.config import VisionConfig
from vision.glimpse import ink_centre, pixel_centre
from vision.mnist_variants import VARIANTS, digit_centres, make_variant
from vision.models.ram import RecurrentAttentionModel, densest_window_centre, policy_loss, scan_offsets


def _ram(policy, glimpses=5, **kw):
    torch.manual_seed(0)
    return RecurrentAttentionModel(3, 1, glimpses=glimpses, patch=4, scales=2, hidden=16, what_hidden=8,
                                   where_hidden=8, policy=policy, **kw)


def test_scan_offsets_go_outwards_ring_by_ring():
    points = scan_offsets(25)
    assert points[0].tolist() == [0.0, 0.0]
    assert sorted(map(tuple, points[1:5].tolist())) == [(-1, 0), (0, -1), (0, 1), (1, 0)]  # the edge neighbours
    assert sorted(map(tuple, points[5:9].tolist())) == [(-1, -1), (-1, 1), (1, -1), (1, 1)]  # the diagonals
    assert len(set(map(tuple, points.tolist()))) == 25 and points.abs().max() == 2  # the 5x5 square
    radii = points.norm(dim=-1)
    assert bool((radii[1:] >= radii[:-1]).all())
    assert scan_offsets(1).tolist() == [[0.0, 0.0]]


def test_densest_window_finds_the_object_among_smaller_pieces():
    x = torch.zeros(3, 1, 40, 50)
    x[0, 0, 10:20, 30:40] = 1.0  # the object: a 10x10 square, centre (34.5, 14.5)
    x[0, 0, 30:33, 2:5] = 1.0  # a piece far from it
    x[1, 0, 5:9, 5:8] = 0.5  # only a piece: the window holds it
    x[1, 0, 6, 6] = 2.0
    centre = densest_window_centre(x, 12)
    torch.testing.assert_close(centre[0], torch.tensor([34.5, 14.5]))
    inside = x[1, 0]
    rows, cols = torch.arange(40.0), torch.arange(50.0)
    want = torch.stack([(inside.sum(0) * cols).sum(), (inside.sum(1) * rows).sum()]) / inside.sum()
    torch.testing.assert_close(centre[1], want)  # the ink's centre of mass inside the window
    torch.testing.assert_close(centre[2], torch.tensor([5.5, 5.5]))  # no ink: the first window's centre


def test_densest_window_sums_match_average_pooling_and_clip_to_small_images():
    torch.manual_seed(1)
    x = torch.rand(4, 2, 23, 31) ** 4  # sparse-ish ink; channels are summed
    window = 9
    box = F.avg_pool2d(x.sum(1, keepdim=True) - x.sum(1, keepdim=True).amin((2, 3), keepdim=True), window, stride=1)
    best = box.flatten(1).argmax(1)
    top, left = best // box.shape[-1], best % box.shape[-1]
    centre = densest_window_centre(x, window)
    assert bool(((centre[:, 0] >= left) & (centre[:, 0] <= left + window - 1)).all())
    assert bool(((centre[:, 1] >= top) & (centre[:, 1] <= top + window - 1)).all())
    small = torch.zeros(1, 1, 6, 7)
    small[0, 0, 2, 3] = 1.0
    torch.testing.assert_close(densest_window_centre(small, 28)[0], torch.tensor([3.0, 2.0]))  # the whole image


def test_densest_policy_scans_around_the_object_explores_in_training_and_keeps_no_policy_gradient():
    model = _ram("densest", glimpses=5, window=8)
    x = torch.zeros(2, 1, 32, 32)
    x[0, 0, 4:10, 20:26] = 1.0  # centre (22.5, 6.5)
    x[1, 0, 20:26, 2:8] = 1.0  # centre (4.5, 22.5)
    model.eval()
    with capture_attention(model) as maps:
        model(x)
    want = torch.tensor([[22.5, 6.5], [4.5, 22.5]])[:, None] + scan_offsets(5) * 2.0  # patch 4: steps of 2 px
    torch.testing.assert_close(pixel_centre(maps[""][0], 32, 32), want)  # the mean path: the scan itself
    scan = maps[""][0]
    model.train()
    many = x.repeat(200, 1, 1, 1)
    with capture_attention(model) as maps:
        logits = model(many)
    noise = (maps[""][0] - scan.repeat(200, 1, 1)) / model.std  # in training: the scan plus the policy's noise
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 1.0) < 0.05
    labels = torch.tensor([0, 1]).repeat(200)
    assert model._policy is None and policy_loss(model, logits, labels) is None
    F.cross_entropy(logits, labels).backward()
    assert model.locator.weight.grad is None  # the location network is not used
    assert model.glimpse_net.what.weight.grad.abs().sum() > 0 and model.classifier.weight.grad.abs().sum() > 0
    corner = torch.zeros(1, 1, 32, 32)
    corner[0, 0, 0:3, 0:3] = 1.0
    model.eval()
    with capture_attention(model) as maps:
        model(corner)
    assert float(maps[""][0].min()) >= -1.0  # a scan beyond the border is clipped to the image


def test_random_policy_is_uniform_new_in_training_and_fixed_in_evaluation():
    model = _ram("random", glimpses=4)
    x = torch.rand(500, 1, 20, 20)
    with capture_attention(model) as maps:
        model.train()
        model(x)
        model(x)
        model.eval()
        model(x)
        model(x)
    train_a, train_b, eval_a, eval_b = maps[""]
    assert not torch.equal(train_a, train_b) and torch.equal(eval_a, eval_b)
    assert float(train_a.abs().max()) <= 1.0
    flat = train_a.flatten()
    assert abs(float(flat.mean())) < 0.03 and abs(float(flat.var()) - 1 / 3) < 0.02  # uniform on [-1, 1]
    assert model._policy is None
    model.eval_samples = 3  # Monte Carlo evaluation: another random path each time, the same at every call
    with capture_attention(model) as maps:
        a = model(x[:5])
        b = model(x[:5])
    torch.testing.assert_close(a, b)
    assert len(maps[""]) == 6 and not torch.equal(maps[""][0], maps[""][1])
    assert math.isclose(float(a.detach().exp().sum(-1).mean()), 1.0, rel_tol=1e-5)


def test_unknown_policy_and_bad_window_fail_with_the_key_named():
    with pytest.raises(ValueError, match="policy must be learned, random or densest"):
        _ram("oracle")
    with pytest.raises(ValueError, match="window"):
        _ram("densest", window=0)
    with pytest.raises(ValueError, match="model.recurrent.policy: expected one of 'learned' | 'random' | 'densest'"):
        load_task_config(VisionConfig, "configs/vision_ram_translated_cpu.yaml", {"model.recurrent.policy": "oracle"})
    with pytest.raises(ValueError, match="model.recurrent: .*window"):
        load_task_config(VisionConfig, "configs/vision_ram_translated_cpu.yaml", {"model.recurrent.window": 0})


@pytest.mark.parametrize("variant", ["centered", "translated", "cluttered", "cluttered100"])
def test_digit_centres_are_the_digits_own_ink_centres_wherever_they_are_placed(variant):
    rng = np.random.default_rng(0)
    digits = np.zeros((30, 28, 28), dtype=np.uint8)
    for i in range(30):  # a bar of random height and place per digit
        top, left = rng.integers(2, 14, 2)
        digits[i, top:top + 12, left:left + 4] = rng.integers(100, 256, (12, 4))
    images, centres = digit_centres(digits, variant, 7)
    np.testing.assert_array_equal(images, make_variant(digits, variant, 7))  # the same images
    own = ink_centre(torch.from_numpy(digits).float()[:, None]).double().numpy()  # on the 28x28 digit
    corner = centres - own  # (col, row) of the digit's top-left on the canvas: whole pixels
    np.testing.assert_allclose(corner, np.round(corner), atol=1e-6)
    size = VARIANTS[variant][0]
    for image, digit, (col, row) in zip(images, digits, np.round(corner).astype(int)):
        assert 0 <= row <= size - 28 and 0 <= col <= size - 28
        assert (image[row:row + 28, col:col + 28] >= digit).all()  # the digit is there (clutter only adds ink)
    if variant in ("centered", "translated"):  # nothing else on the canvas: the image's ink centre
        np.testing.assert_allclose(centres, ink_centre(torch.from_numpy(images).float()[:, None]).numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="placed variants"):
        digit_centres(digits, "rts", 7)
