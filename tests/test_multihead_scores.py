"""MultiHeadAttention with the core's other scores (dot, general, additive) in place of the scaled dot:
the weights path, the masks, and the Transformer classifier that selects them by config."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq_attn.attention import MultiHeadAttention
from seq2seq_attn.classification.models import TransformerClassifier


def test_dot_score_heads_equal_a_hand_computation():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, score="dot").eval()
    x = torch.randn(2, 5, 8)
    out, w = mha(x, x, x, need_weights=True, average_attn_weights=False)  # w (B, H, T, T)
    q, k, v = mha.project_qkv(x)  # (B, H, T, 4)
    expected_w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # no 1/sqrt(d): Luong's dot
    ctx = (expected_w @ v).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(w, expected_w)
    torch.testing.assert_close(out, mha.out_proj(ctx))


def test_scaled_dot_default_is_unchanged_and_keeps_the_fused_path():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 5, 8)
    fused, none = mha(x, x, x)
    weighted, w = mha(x, x, x, need_weights=True)
    assert none is None and w.shape == (2, 5, 5)
    torch.testing.assert_close(fused, weighted)
    q, k, _ = mha.project_qkv(x)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), dim=-1).mean(dim=1)
    torch.testing.assert_close(w, expected)


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_other_scores_respect_padding_return_no_weights_unless_asked_and_train(score):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, score=score)
    x = torch.randn(2, 6, 8, requires_grad=True)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    out, w = mha(x, x, x, key_padding_mask=pad, need_weights=True)
    assert w[1, :, 4:].abs().max() == 0  # padded keys get no weight
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6))
    # padding invariance: the unpadded part of sentence 2 does not see what is in the pads
    x2 = x.detach().clone()
    x2[1, 4:] = 100.0
    out2, _ = mha(x2, x2, x2, key_padding_mask=pad)
    torch.testing.assert_close(out[1, :4], out2[1, :4])
    assert mha(x, x, x)[1] is None
    out.sum().backward()
    params = [p for p in mha.attention.score.parameters()]
    assert (score == "dot") == (not params)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_unknown_score_is_an_error():
    with pytest.raises(ValueError, match="score must be scaled_dot, dot, general or additive, got 'cosine'"):
        MultiHeadAttention(8, 2, score="cosine")


def test_transformer_classifier_takes_the_self_attention_score_from_its_config():
    from seq2seq_attn.classification.config import ModelConfig

    assert ModelConfig().self_attention_score == "scaled_dot"
    torch.manual_seed(0)
    model = TransformerClassifier(vocab_size=20, num_classes=3, embed_dim=8, num_layers=1, num_heads=2, ff_dim=16,
                                  pooling="mean", self_attention_score="general")
    assert model.layers[0].self_attn.score_name == "general"
    tokens = torch.randint(1, 20, (2, 5))
    out = model(tokens, torch.tensor([5, 3]))
    out.logits.sum().backward()
    assert model.layers[0].self_attn.attention.score.key_proj.weight.grad is not None
