"""Attention RNNs: incremental decoding = teacher forcing, every score trains, local attention windows."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.attention.scores import GeneralScore
from seq2seq_attn.translation.config import ModelConfig, RNNConfig
from seq2seq_attn.translation.models import build_model
from seq2seq_attn.translation.models.local_attention import LocalAttention

CASES = [
    {"decoder": "bahdanau", "score": "additive"},
    {"decoder": "bahdanau", "score": "general", "cell": "lstm", "enc_layers": 2, "dec_layers": 2},
    {"decoder": "luong", "score": "dot", "dec_hidden": 32},
    {"decoder": "luong", "score": "general", "input_feeding": False, "bidirectional": False},
    {"decoder": "luong", "score": "concat", "cell": "lstm", "bridge": False},
    {"decoder": "luong", "score": "location", "max_src_len": 10},
    {"decoder": "luong", "score": "general", "attention": "local-m", "window": 1},
    {"decoder": "luong", "score": "general", "attention": "local-p", "window": 2, "dec_layers": 2},
]


def make(seed: int = 0, tie: bool = False, **rnn) -> torch.nn.Module:
    torch.manual_seed(seed)
    base = {"emb_dim": 16, "enc_hidden": 16, "dec_hidden": 24, "dropout": 0.0}
    return build_model(ModelConfig(tie_embeddings=tie, rnn=RNNConfig(**{**base, **rnn})), 15, 13, 0)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 15, (3, 8), generator=g)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[1, 5:] = True
    mask[2, 2:] = True
    return src.masked_fill(mask, 0), mask, torch.randint(4, 13, (3, 6), generator=g)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_step_matches_forward(case: dict) -> None:
    model = make(**case).eval()
    src, mask, tgt = batch()
    logits = model(src, mask, tgt)  # (B, T, V)
    enc = model.encode(src, mask)
    state = model.init_state(enc, 3)
    for t in range(tgt.size(1)):
        lp, state, attn = model.step(tgt[:, t : t + 1].expand(-1, 3), state, enc)
        for k in range(3):
            torch.testing.assert_close(lp[:, k], logits[:, t].log_softmax(-1), atol=1e-5, rtol=1e-5)
        assert attn.shape == (3, 3, 8)
        assert torch.all(attn.masked_select(mask.unsqueeze(1).expand_as(attn)) == 0)  # no weight on pads
        state = model.reorder_state(state, torch.tensor([[2, 0, 1]] * 3))  # identical beams: no change


@pytest.mark.parametrize("score", ["additive", "dot", "general", "concat", "location"])
def test_every_score_function_trains(score: str) -> None:
    model = make(decoder="luong" if score != "additive" else "bahdanau", score=score, dec_hidden=32)
    src, mask, tgt = batch(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        logits = model(src, mask, tgt)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if not losses:  # every parameter gets a gradient (the score's own ones included)
            missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not missing, missing
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_local_p_window_and_gaussian() -> None:
    torch.manual_seed(0)
    local = LocalAttention(GeneralScore(8, 8), "local-p", window=2, query_dim=8)
    query, keys = torch.randn(2, 3, 8), torch.randn(2, 10, 8)
    mask = torch.zeros(2, 1, 10, dtype=torch.bool)
    mask[1, :, 6:] = True
    lens = torch.tensor([10, 6])
    context, weights = local(query, keys, keys, mask, local.project_keys(keys), step=0)  # lengths from the mask
    p = local.positions(query, 0, lens)  # (B, K) = S * sigmoid(v^T tanh(W h))
    assert torch.all((p >= 0) & (p <= lens.unsqueeze(1)))
    pos = torch.arange(10).float()
    dist = pos - p.unsqueeze(-1)
    inside = (dist.abs() <= 2) & ~mask
    assert torch.all(weights[~inside] == 0)  # outside the window or padding: exactly zero
    # Inside: softmax over the window times exp(-(s - p)^2 / (2 (D/2)^2)).
    scores = query @ local.project_keys(keys).transpose(1, 2)
    soft = torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)
    expected = soft * torch.exp(-(dist**2) / (2 * 1.0**2))
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, weights @ keys)


def test_local_m_follows_the_target_position() -> None:
    torch.manual_seed(0)
    local = LocalAttention(GeneralScore(8, 8), "local-m", window=1, query_dim=8)
    query, keys = torch.randn(1, 2, 8), torch.randn(1, 6, 8)
    mask = torch.zeros(1, 1, 6, dtype=torch.bool)
    for step, allowed in [(0, {0, 1}), (3, {2, 3, 4}), (9, {4, 5})]:  # clamped to the last position
        _, w = local(query, keys, keys, mask, local.project_keys(keys), step=step)
        assert {i for i in range(6) if w[0, 0, i] > 0} == allowed
        torch.testing.assert_close(w.sum(-1), torch.ones(1, 2))


def test_weight_tying_and_bridge() -> None:
    tied = make(tie=True, decoder="luong", score="general")
    assert tied.output.weight is tied.tgt_embedding.weight
    with pytest.raises(ValueError, match="score"):
        make(decoder="luong", score="dot", dec_hidden=24)  # 24 != 2 * 16 encoder size
    model = make(bridge=False).eval()
    src, mask, _ = batch()
    state = model.init_state(model.encode(src, mask), 2)
    assert torch.all(state["h"] == 0)


def test_attention_is_captured_per_step() -> None:
    model = make(decoder="luong", score="general").eval()
    src, mask, tgt = batch()
    with capture_attention(model) as maps:
        model(src, mask, tgt)
    (name, weights), = maps.items()
    assert name == "decoder.attention" and len(weights) == tgt.size(1)
    assert weights[0].shape == (3, 1, 8)


def test_local_attention_loads_checkpoints_that_held_the_score_twice() -> None:
    """Before LocalAttention derived from the core Attention, its score sat under "score" and "core.score"."""
    model = make(decoder="luong", score="general", attention="local-p", window=2)
    state = model.state_dict()
    old = dict(state)
    for key in [k for k in state if k.startswith("decoder.attention.score.")]:
        old[key.replace("decoder.attention.score.", "decoder.attention.core.score.")] = state[key].clone()
    fresh = make(seed=1, decoder="luong", score="general", attention="local-p", window=2)
    fresh.load_state_dict(old)  # strict: no unexpected keys
    for key, value in state.items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
