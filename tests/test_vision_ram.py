"""Recurrent Models of Visual Attention (Mnih et al., 2014): the glimpse sensor (shapes, a hand-checked crop),
the locations captured, the policy loss, a few training steps through the Trainer with the glimpse plot, and
the deterministic MNIST variants."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.cli import main
from vision.glimpse import glimpse_pyramid, glimpse_sensor, ink_centre_distance, pixel_centre
from vision.mnist_variants import VARIANTS, make_variant
from vision.models.ram import RecurrentAttentionModel, SoftAttentionRNN, policy_loss

ROOT = Path(__file__).resolve().parent.parent


def test_sensor_shapes_and_a_hand_checked_crop():
    img = torch.arange(64.0).view(1, 1, 8, 8)  # pixel (r, c) = 8 r + c
    # centre between pixels 3 and 4 of both axes: the 2x2 patch is rows 3-4, cols 3-4
    out = glimpse_sensor(img, torch.zeros(1, 2), patch=2, scales=3)
    assert out.shape == (1, 3, 1, 2, 2)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([[27.0, 28.0], [35.0, 36.0]]))
    # scale 2: the 4x4 patch rows/cols 2-5, averaged in 2x2 blocks
    block = img[0, 0, 2:6, 2:6].reshape(2, 2, 2, 2).mean((1, 3))
    torch.testing.assert_close(out[0, 1, 0], block)
    # scale 3: the 8x8 patch is the whole image, averaged in 4x4 blocks
    torch.testing.assert_close(out[0, 2, 0], img[0, 0].reshape(2, 4, 2, 4).mean((1, 3)))
    # top-left corner location (-1, -1): three quarters of the 2x2 patch are outside (zeros)
    corner = glimpse_sensor(img + 1, torch.tensor([[-1.0, -1.0]]), 2, 1)[0, 0, 0]
    torch.testing.assert_close(corner, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))  # only pixel (0, 0) = 0 + 1
    # shifted by one pixel right (2/W in x): columns 4-5
    shifted = glimpse_sensor(img, torch.tensor([[0.25, 0.0]]), 2, 1)[0, 0, 0]
    torch.testing.assert_close(shifted, torch.tensor([[28.0, 29.0], [36.0, 37.0]]))
    torch.testing.assert_close(pixel_centre(torch.tensor([0.25, 0.0]), 8, 8), torch.tensor([4.5, 3.5]))
    # batched: every image gets its own location, colour channels kept
    imgs = torch.rand(5, 3, 20, 30)
    locs = torch.rand(5, 2) * 2 - 1
    out = glimpse_sensor(imgs, locs, 4, 2)
    assert out.shape == (5, 2, 3, 4, 4)
    torch.testing.assert_close(out[3:4], glimpse_sensor(imgs[3:4], locs[3:4], 4, 2))
    with pytest.raises(ValueError, match="locations must be"):
        glimpse_sensor(imgs, locs[:2], 4, 2)


def _crop_then_average(images, locations, patch, scales):
    """The sensor by its definition: a bilinear crop of g 2^i pixels per scale, averaged in 2^i blocks."""
    b, c, h, w = images.shape
    out = []
    for i in range(scales):
        side = patch * 2 ** i
        theta = images.new_zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = side / w, side / h, locations
        grid = F.affine_grid(theta, [b, c, side, side], align_corners=False)
        crop = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(F.avg_pool2d(crop, 2 ** i))
    return torch.stack(out, 1)


@pytest.mark.parametrize("h, w, patch, scales", [(60, 60, 12, 3), (20, 30, 4, 2), (7, 9, 3, 3), (100, 100, 12, 4)])
def test_sensor_equals_the_crop_then_block_average(h, w, patch, scales):
    torch.manual_seed(h + scales)
    images = torch.rand(6, 2, h, w, dtype=torch.float64)
    locations = torch.rand(6, 2, dtype=torch.float64) * 3 - 1.5  # inside, across and beyond the border
    expected = _crop_then_average(images, locations, patch, scales)
    torch.testing.assert_close(glimpse_sensor(images, locations, patch, scales), expected)
    pyramid = glimpse_pyramid(images, scales)  # shared across glimpses: the same numbers
    torch.testing.assert_close(glimpse_sensor(images, locations, patch, scales, pyramid), expected)
    with pytest.raises(ValueError, match="pyramid has 1 levels"):
        glimpse_sensor(images, locations, patch, 2, pyramid[:1])


@pytest.mark.parametrize("h, w", [(60, 60), (7, 11)])
def test_pyramid_levels_are_the_stride_one_box_averages(h, w):
    images = torch.rand(3, 2, h, w, dtype=torch.float64)
    for i, level in enumerate(glimpse_pyramid(images, 5)):
        r = 2 ** i
        expected = F.avg_pool2d(F.pad(images, (r - 1,) * 4), r, stride=1)  # (B, C, H + r - 1, W + r - 1)
        torch.testing.assert_close(level, expected)
    image = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    image[0, 0, 1, 1] = 4.0
    level = glimpse_pyramid(image, 2)[1][0, 0]  # 2x2 means over the image padded by 1: 1.0 where they cover (1, 1)
    torch.testing.assert_close(level[1:3, 1:3], torch.ones(2, 2, dtype=torch.float64))
    assert float(level.sum()) == 4.0


def test_convolutional_glimpse_network_trains_every_pathway():
    model = RecurrentAttentionModel(10, 1, glimpses=3, patch=12, scales=3, conv_widths=(4, 8, 8), core="lstm")
    assert [m.stride for m in model.glimpse_net.conv if isinstance(m, torch.nn.Conv2d)] == [(1, 1), (2, 2), (2, 2)]
    assert model.glimpse_net.what.in_features == 8 * 3 * 3  # 12 -> 12 -> 6 -> 3
    images, labels = torch.rand(5, 1, 60, 60), torch.randint(0, 10, (5,))
    logits = model(images)
    loss = F.cross_entropy(logits, labels) + policy_loss(model, logits, labels)[0]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="must be >= 1"):
        RecurrentAttentionModel(10, conv_widths=(4, 0))


@pytest.mark.parametrize("trains_core", [False, True])
def test_the_policy_gradient_reaches_the_core_only_when_asked(trains_core):
    torch.manual_seed(0)
    model = RecurrentAttentionModel(10, 1, glimpses=3, patch=4, scales=2, policy_trains_core=trains_core)
    images, labels = torch.rand(8, 1, 20, 20), torch.randint(0, 10, (8,))
    logits = model(images)
    policy_loss(model, logits, labels)[0].backward()  # REINFORCE + baseline only, no cross-entropy
    assert model.locator.weight.grad.abs().sum() > 0
    core_grad = model.core.w_h.weight.grad
    assert (core_grad is not None and core_grad.abs().sum() > 0) == trains_core
    assert model.classifier.weight.grad is None  # the reward is not differentiated


def test_a_hidden_layer_in_the_location_network_is_trained_by_reinforce():
    torch.manual_seed(0)
    model = RecurrentAttentionModel(10, 1, glimpses=3, patch=4, scales=2, locator_hidden=16)
    assert isinstance(model.locator[0], torch.nn.Linear) and model.locator[0].out_features == 16
    logits = model(torch.rand(8, 1, 20, 20))
    policy_loss(model, logits, torch.randint(0, 10, (8,)))[0].backward()
    assert model.locator[0].weight.grad.abs().sum() > 0 and model.locator[2].weight.grad.abs().sum() > 0
    model.eval()
    with capture_attention(model) as maps:
        model(torch.rand(2, 1, 20, 20))
    assert next(iter(maps.values()))[0].abs().max() <= 1  # tanh-bounded means at evaluation
    with pytest.raises(ValueError, match="locator_hidden"):
        RecurrentAttentionModel(10, locator_hidden=-1)


def test_ink_centre_distance_by_hand():
    images = torch.zeros(2, 1, 10, 20)
    images[0, 0, 2, 4] = 1.0  # one ink pixel at column 4, row 2
    images[1, 0, 5, 10] = images[1, 0, 5, 12] = 2.0  # centre of mass: column 11, row 5
    corner = torch.tensor([-1.0, -1.0])  # pixel coordinate (-0.5, -0.5)
    locations = torch.stack([torch.stack([corner, torch.zeros(2)]), torch.stack([corner, torch.zeros(2)])])
    d = ink_centre_distance(images, locations)  # the image centre is pixel (9.5, 4.5)
    want = torch.tensor([[math.hypot(4.5, 2.5), math.hypot(5.5, 2.5)], [math.hypot(11.5, 5.5), math.hypot(1.5, 0.5)]])
    torch.testing.assert_close(d, want)
    with pytest.raises(ValueError, match="ink"):
        ink_centre_distance(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match=r"\(B, G, 2\)"):
        ink_centre_distance(images, torch.zeros(2, 2))


def test_locations_are_captured_and_evaluation_is_deterministic():
    torch.manual_seed(0)
    model = RecurrentAttentionModel(10, 1, glimpses=4, patch=4, scales=2, hidden=32, what_hidden=16,
                                    where_hidden=16)
    x = torch.rand(3, 1, 28, 28)
    with capture_attention(model) as maps:
        model.eval()
        a = model(x)
        b = model(x)
    assert list(maps) == [""] and len(maps[""]) == 2 and maps[""][0].shape == (3, 4, 2)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(maps[""][0], maps[""][1])
    assert model._policy is None  # nothing kept for the policy loss in evaluation
    model.train()
    logits = model(x)
    log_prob, baseline = model._policy
    assert log_prob.shape == baseline.shape == (3, 4)
    loss, logs = policy_loss(model, logits, torch.tensor([0, 1, 2]))
    loss.backward()
    assert model.locator.weight.grad.abs().sum() > 0 and model.baseline.weight.grad.abs().sum() > 0
    assert model._policy is None and set(logs) == {"reward", "baseline"}
    assert policy_loss(model, logits, torch.tensor([0, 1, 2])) is None


@pytest.mark.parametrize("kind, logits, want_reward", [
    # first correct (R = 1), second wrong (R = 0)
    ("correct", [[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]], [1.0, 0.0]),
    # the softmax at the right class grades both, right or wrong
    ("probability", [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [1 / (1 + math.exp(-1) + math.exp(-2)), 1 / 3]),
    # its logarithm (Ba et al., 2015): a confident mistake costs most
    ("log_likelihood", [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [-math.log(1 + math.exp(-1) + math.exp(-2)), -math.log(3)]),
])
def test_policy_loss_is_reinforce_plus_baseline_regression(kind, logits, want_reward):
    model = RecurrentAttentionModel(3, 1, glimpses=2, patch=2, hidden=4, what_hidden=4, where_hidden=4)
    log_prob = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    baseline = torch.tensor([[0.2, 0.4], [0.6, 0.1]], requires_grad=True)
    model._policy = (log_prob, baseline)
    loss, logs = policy_loss(model, torch.tensor(logits), torch.tensor([0, 2]), reward=kind)
    reward = torch.tensor(want_reward).unsqueeze(1)
    want = -((reward - baseline.detach()) * log_prob).sum() + ((baseline - reward) ** 2).sum()
    torch.testing.assert_close(loss, want)
    assert logs["reward"] == pytest.approx(float(reward.mean()))
    with pytest.raises(ValueError, match="reward must be"):
        policy_loss(model, torch.tensor(logits), torch.tensor([0, 2]), reward="accuracy")


def test_leave_one_out_baseline_over_samples_of_an_image():
    model = RecurrentAttentionModel(3, 1, glimpses=2, patch=2, hidden=4, what_hidden=4, where_hidden=4)
    log_prob = torch.tensor([[-1.0, -2.0], [-0.5, -0.1], [-0.3, -0.2], [-0.7, -0.9]], requires_grad=True)
    baseline = torch.full((4, 2), 0.5, requires_grad=True)
    model._policy = (log_prob, baseline)
    logits = torch.eye(3)[[0, 1, 0, 0]] * 5  # image 1 (rows 0, 1): right, wrong; image 2 (rows 2, 3): right, right
    loss, _ = policy_loss(model, logits, torch.tensor([0, 0, 0, 0]), samples=2)
    reward = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    others = torch.tensor([[0.0], [1.0], [1.0], [1.0]])  # the other sample of the same image
    want = -((reward - others) * log_prob).sum() + ((baseline - reward) ** 2).sum()
    torch.testing.assert_close(loss, want)
    with pytest.raises(ValueError, match="divide the batch"):
        model._policy = (log_prob, baseline)
        policy_loss(model, logits, torch.tensor([0, 0, 0, 0]), samples=3)


def test_soft_attention_rnn_records_weights_over_the_feature_map():
    model = SoftAttentionRNN(10, 1, steps=3, widths=(4, 8), hidden=16, attention_dim=8)
    with capture_attention(model) as maps:
        logits = model(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10)
    weights = maps["attention"]
    assert len(weights) == 3 and weights[0].shape == (2, 1, 49)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 1))


def test_variants_are_deterministic_and_hold_the_digit():
    rng = np.random.default_rng(0)
    digits = np.zeros((6, 28, 28), dtype=np.uint8)
    digits[:, 4:24, 10:18] = rng.integers(100, 256, (6, 20, 8))
    for name, (size, clutter, _) in VARIANTS.items():
        a, b = make_variant(digits, name, 3), make_variant(digits, name, 3)
        assert a.shape == (6, size, size) and a.dtype == np.uint8 and np.array_equal(a, b)
        # the whole digit is somewhere on the canvas (pasting keeps the pixel-wise maximum)
        windows = np.lib.stride_tricks.sliding_window_view(a, (28, 28), axis=(1, 2))  # (6, P, P, 28, 28)
        assert (windows >= digits[:, None, None]).all((-2, -1)).any((1, 2)).all()
        assert (a > 0).sum() >= (digits > 0).sum() + (clutter > 0)  # clutter adds ink
    assert not np.array_equal(make_variant(digits, "translated", 3), make_variant(digits, "translated", 4))
    with pytest.raises(ValueError, match="unknown MNIST variant"):
        make_variant(digits, "sheared", 0)


def _tiny_ram_config(tmp_path, run="run", epochs=3):
    """Two classes of bars (left / right) as 28x28 digits, the translated variant, a tiny RAM."""
    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(40) % 2, np.arange(10) % 2
    x_train = np.zeros((40, 28, 28), dtype=np.uint8)
    x_test = np.zeros((10, 28, 28), dtype=np.uint8)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        for i, label in enumerate(y):
            x[i, 6:22, (4 if label == 0 else 18):(10 if label == 0 else 24)] = rng.integers(150, 256, (16, 6))
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    config = tmp_path / f"{run}.yaml"
    config.write_text(f"""
data: {{path: {npz}, variant: translated, mean: [0.0], std: [1.0], augment: false, batch_size: 8}}
model: {{arch: ram, recurrent: {{glimpses: 3, patch: 8, scales: 3, std: 0.2, hidden: 32, what_hidden: 16,
        where_hidden: 16}}}}
training: {{run_dir: {tmp_path / run}, device: cpu, cpu_threads: 1, lr: 0.003, max_epochs: {epochs}, metric: acc,
           metric_mode: max, log_every: 1, progress: false, save_every: 2}}
""", encoding="utf-8")
    return config


def test_ram_trains_through_the_trainer_and_plots_glimpses(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    assert main(["vision", "train", str(_tiny_ram_config(tmp_path))]) == 0
    run = tmp_path / "run"
    assert (run / "glimpses.png").stat().st_size > 1000
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in r for r in logs)
    assert json.loads((run / "test_metrics.json").read_text())["err"] <= 100
    cached = list((tmp_path / "cache" / "vision").glob("digits-*-translated-train-s0-v1.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (40, 60, 60)
    _script("ram_glimpse_check").main([str(run), "--count", "5"])  # how far the glimpses land from the digit
    table = capsys.readouterr().out
    assert "5 test images" in table and "| fixed at the centre |" in table and "| 2 |" in table
    assert "distances to the digit's own ink centre" in table  # a placed variant: the generator knows where
    assert "linear read-out of the state" in table and "guessing the mean centre" in table
    assert "correlation with the digit's x, y" in table
    with pytest.raises(SystemExit, match="records no attention distribution"):  # locations, not distributions
        _script("vision_attention_entropy").main([str(run)])
    # vision test: the same score again; with 4 sampled glimpse paths averaged, written beside with its override
    trained = json.loads((run / "test_metrics.json").read_text())
    assert main(["vision", "test", str(run)]) == 0
    again = json.loads((run / "test_metrics.json").read_text())
    assert again["loss"] == pytest.approx(trained["loss"]) and "overrides" not in again
    out = tmp_path / "mc.json"
    assert main(["vision", "test", str(run), "--set", "model.recurrent.eval_samples=4", "--out", str(out)]) == 0
    mc = json.loads(out.read_text())
    assert mc["overrides"] == {"model.recurrent.eval_samples": 4} and mc["loss"] != pytest.approx(trained["loss"])
    assert json.loads((run / "test_metrics.json").read_text()) == again  # the training's score kept
    capsys.readouterr()
    assert main(["vision", "test", str(run), "--set", "model.recurrent.eval_samples=-1"]) != 0
    assert "config.yaml: model.recurrent: eval_samples must be >= 0" in capsys.readouterr().err


def test_linear_readout_finds_a_linearly_coded_location_and_not_noise():
    readout = _script("ram_glimpse_check").linear_readout_distance
    torch.manual_seed(0)
    target = torch.rand(400, 2) * 60  # pixels
    coded = torch.cat([target @ torch.randn(2, 6) + 3.0, torch.randn(400, 4)], 1)  # location in 6 of 10 features
    assert float(readout(coded, target, 200).max()) < 1e-3
    noise = readout(torch.randn(400, 10), target, 200)
    guess = (target[200:] - target[:200].mean(0)).norm(dim=-1)
    assert float(noise.median()) > 0.9 * float(guess.median())  # no better than guessing the mean
    with pytest.raises(ValueError, match="fit must be between 1 and 399"):
        readout(coded, target, 400)


def test_glimpse_check_correlation_by_hand():
    correlation = _script("ram_glimpse_check").correlation
    x = torch.tensor([1.0, 2.0, 4.0, 7.0])
    assert correlation(x, 2 * x + 1) == pytest.approx(1.0) and correlation(x, -x) == pytest.approx(-1.0)
    assert correlation(x, torch.tensor([1.0, -1.0, -1.0, 1.0])) == pytest.approx(1 / math.sqrt(21))  # 2 / (sqrt(21) 2)
    assert correlation(torch.zeros(4), x) == 0.0  # a glimpse that never moves


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_soft_rnn_attention_entropy_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    config = _tiny_ram_config(tmp_path, epochs=1)
    assert main(["vision", "train", str(config), "--set", "model.arch=soft_rnn",
                 "--set", "model.recurrent.cnn_widths=[4, 8]"]) == 0
    got = _script("vision_attention_entropy").main([str(tmp_path / "run"), "--count", "6", "--batch", "4"])
    from vision.lifecycle import load_run

    run = load_run(tmp_path / "run", "cpu")
    with capture_attention(run.model) as maps:
        run.predict(run.task.test_set.images[:6])
    p = torch.cat([w.reshape(-1, w.shape[-1]) for w in maps["attention"]])  # (6 x steps, 15 x 15 positions)
    torch.testing.assert_close(got["entropy"], float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean()),
                               rtol=1e-4, atol=1e-5)
    assert got["uniform"] == pytest.approx(math.log(15 * 15)) and 0 < got["ratio"] <= 1
    assert "6 test images" in capsys.readouterr().out


def test_ram_resumes_exactly(tmp_path, monkeypatch):
    """Stopping at step 2 and resuming to step 4 gives the weights of one uninterrupted run (the location
    samples come from the resumed RNG)."""
    from safetensors.torch import load_file

    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    whole, parts = _tiny_ram_config(tmp_path, "whole"), _tiny_ram_config(tmp_path, "parts")
    assert main(["vision", "train", str(whole), "--set", "training.max_steps=4"]) == 0
    assert main(["vision", "train", str(parts), "--set", "training.max_steps=2"]) == 0
    assert main(["vision", "train", str(parts), "--resume", "--set", "training.max_steps=4"]) == 0
    a = load_file(tmp_path / "whole" / "checkpoints" / "step-000004.safetensors")
    b = load_file(tmp_path / "parts" / "checkpoints" / "step-000004.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _ce_locator_grad(model, images, labels, seed=0):
    torch.manual_seed(seed)  # the same policy noise in every pass
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return model.locator.weight.grad


@pytest.mark.parametrize("mode", ["reinforce", "pathwise", "both"])
def test_the_classification_loss_reaches_the_location_network_only_pathwise(mode):
    torch.manual_seed(0)
    model = RecurrentAttentionModel(10, 1, glimpses=3, patch=4, scales=2, location_gradient=mode)
    images, labels = torch.rand(8, 1, 20, 20), torch.randint(0, 10, (8,))
    grad = _ce_locator_grad(model, images, labels)
    assert (grad is not None and grad.abs().sum() > 0) == (mode != "reinforce")
    kept = policy_loss(model, model(images), labels)  # a REINFORCE term unless pathwise alone
    assert (kept is None) == (mode == "pathwise")
    # a blank image looks the same wherever the glimpse lands: no gradient, so none comes through "where"
    blank = _ce_locator_grad(model, torch.zeros(8, 1, 20, 20), labels)
    assert blank is None or blank.abs().sum() == 0
    with pytest.raises(ValueError, match="location_gradient"):
        RecurrentAttentionModel(10, location_gradient="straight_through")


def test_the_sensor_gradient_in_the_location_matches_finite_differences():
    # the pathwise location gradient is the sensor's: bilinear in the location, checked in float64 at every scale
    torch.manual_seed(1)
    images = torch.rand(3, 2, 24, 30, dtype=torch.float64)
    locations = (torch.rand(3, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(lambda loc: glimpse_sensor(images, loc, 4, 3), (locations,), eps=1e-6, atol=1e-6)
    grad, = torch.autograd.grad(glimpse_sensor(images, locations, 4, 3).sum(), locations)
    assert grad.abs().sum() > 0


def test_monte_carlo_evaluation_averages_sampled_paths_deterministically():
    torch.manual_seed(0)
    model = RecurrentAttentionModel(10, 1, glimpses=3, patch=4, scales=2, std=0.3, eval_samples=5).eval()
    images = torch.rand(6, 1, 20, 20)
    with torch.no_grad(), capture_attention(model) as maps:
        log_p = model(images)
        again = model(images)
    torch.testing.assert_close(log_p, again)  # the same noise at every call: evaluation is deterministic
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(6))  # log of an average of distributions
    paths = maps[""]
    assert len(paths) == 10 and all(p.shape == (6, 3, 2) for p in paths)  # 5 paths a call, each recorded
    assert not torch.equal(paths[0], paths[1]) and torch.equal(paths[0], paths[5])
    # by hand: the 5 paths' probabilities, averaged; each path is the mean path moved by the sampled noise
    with torch.no_grad(), capture_attention(model) as maps:
        pyramid = glimpse_pyramid(images, 2)
        generator = torch.Generator().manual_seed(0)
        probs = [model.glimpse_path(images, pyramid, generator).softmax(-1) for _ in range(5)]
    torch.testing.assert_close(log_p, torch.stack(probs).mean(0).log())
    model.eval_samples = 0
    with torch.no_grad(), capture_attention(model) as maps:
        mean_path = model(images)
    assert len(maps[""]) == 1 and not torch.allclose(mean_path.log_softmax(-1), log_p)
    model.std = 1e-9  # a policy without spread: every sampled path is the mean path
    model.eval_samples = 3
    with torch.no_grad():
        torch.testing.assert_close(model(images), mean_path.log_softmax(-1), rtol=1e-5, atol=1e-5)
    model.train()  # training samples with the global RNG and keeps the policy, whatever eval_samples says
    model(images)
    assert model._policy is not None and model._policy[0].shape == (6, 3)
    with pytest.raises(ValueError, match="eval_samples"):
        RecurrentAttentionModel(10, eval_samples=-1)
