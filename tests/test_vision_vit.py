"""The Vision Transformer on the shared encoder layers, attention rollout, capture and exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _vision_runs import resumed_equals_uninterrupted

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.classification.models.transformer_classifier import TransformerClassifier
from seq2seq_attn.layers import TransformerEncoderLayer
from vision.attention_maps import attention_heatmaps
from vision.config import VisionModelConfig, ViTConfig
from vision.models.vit import VisionTransformer, attention_rollout
from vision.task import build_model


def tiny(**kwargs) -> VisionTransformer:
    torch.manual_seed(0)
    args = {"num_classes": 5, "in_channels": 3, "image_size": (8, 12), "patch": 4, "dim": 16, "depth": 2,
            "heads": 2, **kwargs}
    return VisionTransformer(**args)


def test_shapes_tokens_and_bad_sizes():
    model = tiny()
    x = torch.randn(3, 3, 8, 12)
    assert model.grid == (2, 3)
    assert model.tokens(x).shape == (3, 1 + 6, 16)
    assert model(x).shape == (3, 5)
    with pytest.raises(ValueError, match="must divide the image size 8x10"):
        tiny(image_size=(8, 10))
    with pytest.raises(ValueError, match="built for 8x12 images"):
        model(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="needs the image size"):
        build_model(VisionModelConfig(arch="vit"), 10, 3)
    with pytest.raises(ValueError, match="arch vit has its own self-attention"):
        VisionModelConfig(arch="vit", attention="se")
    with pytest.raises(ValueError, match="divisible by vit.heads"):
        ViTConfig(dim=10, heads=4)


def test_the_encoder_layers_are_the_nlp_layers():
    """Not a copy: the ViT's layers are instances of the class the Transformer classifier (and translation)
    uses, with their multi-head attention."""
    model = tiny(depth=3)
    text = TransformerClassifier(vocab_size=20, num_classes=2, embed_dim=16, num_heads=2, ff_dim=32, num_layers=1)
    text_layer = next(m for m in text.modules() if isinstance(m, TransformerEncoderLayer))
    assert len(model.layers) == 3
    assert all(type(layer) is TransformerEncoderLayer is type(text_layer) for layer in model.layers)
    assert all(layer.norm_first for layer in model.layers) and not tiny(pre_ln=False).layers[0].norm_first
    assert isinstance(tiny(pre_ln=False).norm, torch.nn.Identity)


def test_gradients_reach_every_parameter():
    model = tiny(dropout=0.1).train()
    x = torch.randn(2, 3, 8, 12, requires_grad=True)
    model(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_rollout_matches_a_hand_computation_on_two_layers():
    # layer 1: heads [[1, 0], [.2, .8]] and [[1, 0], [1, 0]] -> mean [[1, 0], [.6, .4]];
    #   (A + I) / 2 = [[1, 0], [.3, .7]]
    layer1 = torch.tensor([[[[1.0, 0.0], [0.2, 0.8]], [[1.0, 0.0], [1.0, 0.0]]]])
    # layer 2: heads [[.5, .5], [0, 1]] twice -> (A + I) / 2 = [[.75, .25], [0, 1]]
    layer2 = torch.tensor([[[[0.5, 0.5], [0.0, 1.0]]] * 2])
    # rollout = A2 @ A1 = [[.75 + .25 * .3, .25 * .7], [.3, .7]]  (A1 @ A2 would be [[.75, .25], [.225, .775]])
    expected = torch.tensor([[[0.825, 0.175], [0.3, 0.7]]])
    torch.testing.assert_close(attention_rollout([layer1, layer2]), expected)
    torch.testing.assert_close(attention_rollout([layer1.mean(1), layer2.mean(1)]), expected)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])
    with pytest.raises(ValueError, match="layer 1 weights of shape"):
        attention_rollout([layer1, torch.ones(1, 3, 3) / 3])


def test_capture_records_every_layer_and_the_rollout_comes_from_it():
    model = tiny(depth=3).eval()
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        plain = model(x)
    with capture_attention(model) as maps, torch.no_grad():
        captured = model(x)
    torch.testing.assert_close(captured, plain)  # the weights path gives the fused path's output
    assert sorted(maps) == [f"layers.{i}.self_attn" for i in range(3)]
    for calls in maps.values():
        assert len(calls) == 1 and calls[0].shape == (2, 2, 7, 7)
        torch.testing.assert_close(calls[0].sum(-1), torch.ones(2, 2, 7))
    logits, rollout = model.rollout(x)
    torch.testing.assert_close(logits, plain)
    by_hand = attention_rollout([maps[f"layers.{i}.self_attn"][0] for i in range(3)])[:, 0, 1:].reshape(2, 2, 3)
    torch.testing.assert_close(rollout, by_hand)
    assert (rollout > 0).all() and (rollout.sum((1, 2)) < 1).all()  # the class token keeps a share itself
    heat, note = attention_heatmaps(model, x)
    assert heat.shape == (2, 8, 12) and note == "rollout at 2x3"
    assert heat.amin() == 0 and torch.isclose(heat.amax(), torch.tensor(1.0))


def _config(tmp_path, run):
    rng = np.random.default_rng(0)
    npz = tmp_path / "tiny.npz"
    if not npz.exists():
        x = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
        y = np.arange(24) % 3
        np.savez(npz, x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    config = tmp_path / f"{run}.yaml"
    config.write_text(f"""
data: {{path: {npz}, batch_size: 8, crop_padding: 2}}
model: {{arch: vit, vit: {{patch: 4, dim: 16, depth: 2, heads: 2, mlp_ratio: 2, dropout: 0.1}}}}
training: {{run_dir: {tmp_path / run}, device: cpu, cpu_threads: 1, optimizer: adamw, lr: 0.003,
           weight_decay: 0.05, schedule: cosine, warmup_steps: 2, max_epochs: 3, metric: acc, metric_mode: max,
           log_every: 1, progress: false, save_every: 2}}
""", encoding="utf-8")
    return config


def test_vit_trains_and_resumes_exactly(tmp_path, monkeypatch):
    """``model.arch: vit`` trains through the Trainer; stopping at step 2 and resuming to step 4 gives the
    weights of one uninterrupted run (dropout and augmentation included)."""
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    weights = resumed_equals_uninterrupted(tmp_path, _config, steps=4, stop=2)
    assert "pos_embed" in weights and "layers.1.self_attn.in_proj_weight" in weights
    assert json.loads((tmp_path / "whole" / "test_metrics.json").read_text())["err"] <= 100


def test_explore_shows_each_layer_and_the_rollout():
    from seq2seq_attn.explore.vision import grad_cam, module_maps

    model = tiny(depth=2).eval()
    x = torch.randn(1, 3, 8, 12)
    logits, entries = module_maps(model, x)
    torch.testing.assert_close(logits, model(x))
    assert [e["name"] for e in entries] == ["layers.0.self_attn", "layers.1.self_attn", "rollout"]
    assert all(e["kind"] == "spatial" and (e["h"], e["w"]) == (2, 3) for e in entries)
    cam = grad_cam(model, x, int(logits.argmax()))
    assert cam.shape == (8, 12) and cam.max() <= 1
