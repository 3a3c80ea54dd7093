"""Show, Attend and Tell: the model's pieces against hand computations, the translation search on images,
and training through the Trainer (REINFORCE for hard attention, exact resume, predict's outputs)."""

from __future__ import annotations

import math

import pytest
import torch
from _caption_tiny import tiny_set

from seq2seq_attn.captioning.config import CaptionConfig, CaptionModelConfig, DecoderConfig, EncoderConfig
from seq2seq_attn.captioning.evaluation import pad_captions, word_accuracy
from seq2seq_attn.captioning.model import build_caption_model, doubly_stochastic_penalty
from seq2seq_attn.config import ConfigError, from_dict
from seq2seq_attn.translation.search import search
from seq2seq_attn.translation.subwords import BOS, EOS


def tiny_model(seed: int = 0, **decoder) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = CaptionModelConfig(EncoderConfig(widths=[8, 16]), DecoderConfig(emb_dim=8, hidden=16, **decoder))
    return build_caption_model(cfg, 9, (1, 16, 48), [0.2], [0.4])


def test_encoder_grid_and_attention_rows_sum_to_one_over_positions():
    model = tiny_model(dropout=0.0).eval()
    images = tiny_set(3).images
    mask = model.source_mask(images)
    assert mask.shape == (3, 8 * 24) and not mask.any()  # 16 x 48 -> two stages -> 8 x 24 positions
    assert model.encoder(images).shape == (3, 8 * 24, 16)
    tgt_in = torch.tensor([[BOS, 4, 5, 6]] * 3)
    logits, alphas = model(images, mask, tgt_in, return_attention=True)
    assert logits.shape == (3, 4, 9) and alphas.shape == (3, 4, 8 * 24)
    torch.testing.assert_close(alphas.sum(-1), torch.ones(3, 4))
    assert (alphas >= 0).all()


def test_incremental_steps_give_the_teacher_forced_log_probs():
    model = tiny_model(dropout=0.3).eval()
    images = tiny_set(2).images
    tgt_in = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, 4]])
    mask = model.source_mask(images)
    logits, alphas = model(images, mask, tgt_in, return_attention=True)
    enc = model.encode(images, mask)
    state = model.init_state(enc, 1)
    for t in range(tgt_in.size(1)):
        lp, state, weights = model.step(tgt_in[:, t:t + 1], state, enc)
        torch.testing.assert_close(lp[:, 0], torch.log_softmax(logits[:, t], -1))
        torch.testing.assert_close(weights[:, 0], alphas[:, t])


def test_doubly_stochastic_penalty_is_the_hand_computation():
    alphas = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],
                           [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]]])  # (B=2, T=3, L=3)
    keep = torch.tensor([[True, True, True], [True, True, False]])  # the second caption: 2 steps
    # image 1: sums over t 0.9, 0.65, 1.45; image 2 (steps 0-1): 1, 1, 0
    expected = 0.5 * ((0.1 ** 2 + 0.35 ** 2 + 0.45 ** 2) + (0 + 0 + 1))
    got = doubly_stochastic_penalty(alphas, keep, 0.5)
    assert math.isclose(float(got), expected, rel_tol=1e-6)


def test_beam_one_is_greedy_and_the_n_best_are_ranked():
    model = tiny_model(1).eval()
    images = tiny_set(3).images
    mask = model.source_mask(images)
    hyps = search(model, images, mask, BOS, EOS, 6, beam_size=1)
    for b, (h,) in enumerate(hyps):
        # greedy: every generated token (and the final EOS) is the arg-max given the tokens before it
        tgt_in = torch.tensor([[BOS, *h.tokens]])
        logits = model(images[b:b + 1], mask[b:b + 1], tgt_in)
        want = logits[0].argmax(-1).tolist()
        assert want[:len(h.tokens)] == h.tokens
        assert want[-1] == EOS or len(h.tokens) == 6
        assert h.attention.shape == (len(h.tokens) + 1, 8 * 24)
    beams = search(model, images, mask, BOS, EOS, 6, beam_size=4, n_best=3)
    assert all(len(hs) == 3 and [x.score for x in hs] == sorted((x.score for x in hs), reverse=True) for hs in beams)


def test_word_accuracy_uses_the_closest_reference_and_counts_missing_and_extra_words():
    refs = [[["a", "b", "c"], ["a", "x", "y"]], [["d", "e"]]]
    assert word_accuracy([["a", "x", "c"], ["d", "e", "f"]], refs) == (2 + 2, 3 + 3)
    assert word_accuracy([["a", "b", "c"], []], refs) == (3, 3 + 2)


def test_pad_captions_adds_bos_and_eos():
    tgt_in, tgt_out = pad_captions([[5, 6], [7]])
    assert tgt_in.tolist() == [[BOS, 5, 6], [BOS, 7, 0]]
    assert tgt_out.tolist() == [[5, 6, EOS], [7, EOS, 0]]


def test_encoder_with_a_cv_module_frozen_or_trained_and_bad_config_names_the_key():
    torch.manual_seed(0)
    cfg = CaptionModelConfig(EncoderConfig(widths=[8, 16], attention="se", freeze=True), DecoderConfig(hidden=16))
    model = build_caption_model(cfg, 9, (1, 16, 48), [0.2], [0.4]).train()
    assert any(type(m).__name__.lower().startswith("se") for m in model.encoder.modules())
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not model.encoder.stages.training  # frozen BatchNorm statistics
    assert model.decoder.training
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.encoder: unknown attention module 'nope'"):
        from_dict(CaptionConfig, {"data": {}, "model": {"encoder": {"attention": "nope"}}}, where="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.decoder: normalize: unknown normalizer"):
        from_dict(CaptionConfig, {"data": {}, "model": {"decoder": {"normalize": "nope"}}}, where="c.yaml")
