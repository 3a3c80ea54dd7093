"""Channel gates (SE, ECA) written once for images and text: the text view (B, T, C) with a padding mask
against a hand computation and against the image module on (B, C, T, 1), padding invariance, gradients,
parameter counts, and the classifiers' ``model.channel_gate``."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.classification.config import ModelConfig
from seq2seq_attn.classification.models import build_model
from seq2seq_attn.layers.gates import SequenceChannelGate, channel_descriptor, eca_kernel_size
from vision.registry import create_attention

C = 24


def _gate(name: str, seed: int = 0) -> SequenceChannelGate:
    torch.manual_seed(seed)
    gate = SequenceChannelGate(name, C)
    for p in gate.parameters():  # away from the init, so that every weight matters
        torch.nn.init.normal_(p, std=0.5)
    return gate


def test_se_on_text_by_hand_with_padding():
    gate = _gate("se")
    x = torch.randn(2, 5, C)  # (B, T, C)
    lengths = torch.tensor([5, 3])
    mask = torch.arange(5) >= lengths[:, None]  # (B, T) True = padding
    fc1, fc2 = gate.gate.fc[0], gate.gate.fc[2]
    for b in range(2):
        z = x[b, : lengths[b]].mean(0)  # (C,): the mean over the real tokens only
        hidden = torch.relu(fc1.weight[:, :, 0, 0] @ z + fc1.bias)
        s = torch.sigmoid(fc2.weight[:, :, 0, 0] @ hidden + fc2.bias)  # (C,)
        out = gate(x, mask)[b]
        torch.testing.assert_close(out, x[b] * s, rtol=1e-5, atol=1e-6)


def test_eca_on_text_by_hand():
    gate = _gate("eca")
    k = gate.gate.kernel_size
    assert k == eca_kernel_size(C) == 3
    x = torch.randn(1, 4, C)
    z = x[0].mean(0)  # (C,)
    w = gate.gate.conv.weight[0, 0]  # (k,)
    padded = torch.nn.functional.pad(z, (k // 2, k // 2))
    logits = torch.stack([(padded[c:c + k] * w).sum() for c in range(C)])
    torch.testing.assert_close(gate(x), x * torch.sigmoid(logits), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["se", "eca"])
def test_text_gate_is_the_image_module_on_a_c_by_t_by_1_map(name):
    gate = _gate(name)
    image = create_attention(name, C)  # the vision registry's module, same weights
    assert type(image) is type(gate.gate)
    image.load_state_dict(gate.gate.state_dict())
    x = torch.randn(3, 7, C)  # (B, T, C), no padding
    as_map = x.transpose(1, 2).unsqueeze(-1)  # (B, C, T, 1)
    expected = image(as_map).squeeze(-1).transpose(1, 2)
    torch.testing.assert_close(gate(x), expected)
    torch.testing.assert_close(gate(x, torch.zeros(3, 7, dtype=torch.bool)), expected, rtol=1e-6, atol=1e-6)
    # Without a mask the squeeze is the plain mean, bit for bit: the image modules are unchanged.
    assert torch.equal(channel_descriptor(as_map), as_map.mean((2, 3), keepdim=True))


@pytest.mark.parametrize("name", ["se", "eca"])
def test_padding_does_not_change_the_real_tokens(name):
    gate = _gate(name)
    x = torch.randn(2, 4, C)
    lengths = torch.tensor([4, 2])
    mask = torch.arange(4) >= lengths[:, None]
    out = gate(x, mask)
    longer = torch.cat([x, 1e3 * torch.randn(2, 6, C)], 1)  # six more padded positions holding garbage
    out_longer = gate(longer, torch.arange(10) >= lengths[:, None])
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out_longer[b, :n], out[b, :n])
    # Garbage inside row 1's own padding does not reach its real tokens either.
    dirty = x.clone()
    dirty[1, 2:] = float("inf")
    torch.testing.assert_close(gate(dirty, mask)[1, :2], out[1, :2])


@pytest.mark.parametrize("name", ["se", "eca"])
def test_gradients_reach_the_weights_and_skip_the_padding(name):
    gate = _gate(name)
    x = torch.randn(2, 5, C, requires_grad=True)
    mask = torch.arange(5) >= torch.tensor([5, 3])[:, None]
    out = gate(x, mask)
    (out * (~mask).unsqueeze(-1)).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[1, 3:], torch.zeros(2, C))  # padded positions: no gradient
    assert x.grad[1, :3].abs().sum() > 0
    for p in gate.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_parameter_counts():
    se, eca = SequenceChannelGate("se", 64), SequenceChannelGate("eca", 128)
    rd = 64 // 16
    assert sum(p.numel() for p in se.parameters()) == 2 * 64 * rd + rd + 64
    assert sum(p.numel() for p in eca.parameters()) == eca_kernel_size(128) == 5  # (log2 128 + 1) / 2 = 4 -> 5
    with pytest.raises(ValueError, match="unknown channel gate 'cbam'"):
        SequenceChannelGate("cbam", 64)


@pytest.mark.parametrize("kind", ["attention", "transformer"])
def test_classifiers_gate_their_encoder_features(kind):
    cfg = dict(type=kind, embed_dim=16, hidden_size=8, num_layers=1, num_heads=2, ff_dim=16, dropout=0.0,
               embed_dropout=0.0, score="scaled_dot" if kind == "transformer" else "additive")
    torch.manual_seed(0)
    plain = build_model(ModelConfig(**cfg), 30, 3)
    torch.manual_seed(0)
    gated = build_model(ModelConfig(**cfg, channel_gate="eca"), 30, 3).eval()
    dim = 16  # BiLSTM 2 x 8 or the Transformer's width
    extra = sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == eca_kernel_size(dim)
    tokens = torch.randint(1, 30, (2, 6))
    tokens[1, 4:] = 0
    lengths = torch.tensor([6, 4])
    with capture_attention(gated) as maps:
        out = gated(tokens, lengths)
    assert out.logits.shape == (2, 3)
    gate_maps = [w for name, calls in maps.items() if "channel_gate" in name for w in calls]
    assert len(gate_maps) == 1 and gate_maps[0].shape == (2, dim, 1, 1)
    # The short document alone gives the same logits as inside the padded batch.
    alone = gated(tokens[1:, :4], lengths[1:])
    torch.testing.assert_close(alone.logits[0], out.logits[1], rtol=1e-5, atol=1e-5)


def test_han_has_no_channel_gate():
    with pytest.raises(ValueError, match="channel_gate: only for type attention and transformer"):
        ModelConfig(type="han", channel_gate="se")
