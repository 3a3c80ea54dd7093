"""The attention core: score functions, normalizers, Attention, capture."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_attn.attention import (
    SCORE_NAMES,
    AdditiveScore,
    Attention,
    DotScore,
    GeneralScore,
    HardMax,
    LocationScore,
    ScaledDotScore,
    Sigmoid,
    Softmax,
    build_normalizer,
    build_score,
    capture_attention,
    masked_softmax,
    merge_masks,
)

# -- property tests of the masked softmax ------------------------------------------------------------------


@st.composite
def scores_and_mask(draw):
    b = draw(st.integers(1, 3))
    tq = draw(st.integers(1, 4))
    tk = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, tq, tk, generator=gen) * draw(st.sampled_from([0.1, 1.0, 30.0]))
    mask = torch.rand(b, tq, tk, generator=gen) < draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    return scores, mask


@settings(max_examples=60, deadline=None)
@given(scores_and_mask())
def test_masked_softmax_properties(data):
    scores, mask = data
    weights = masked_softmax(scores, mask)
    assert not torch.isnan(weights).any()
    # masked keys get exactly zero
    assert (weights[mask] == 0).all()
    row_sums = weights.sum(-1)
    has_keys = (~mask).any(-1)
    # rows with at least one unmasked key sum to one; fully masked rows are all zeros
    torch.testing.assert_close(row_sums[has_keys], torch.ones_like(row_sums[has_keys]))
    assert (row_sums[~has_keys] == 0).all()


def test_fully_masked_rows_have_finite_gradients():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = True  # one query sees no key
    masked_softmax(scores, mask).pow(2).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[0, 1] == 0).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["dot", "scaled_dot", "general", "additive"]))
def test_permuting_keys_and_values_permutes_weights_only(seed, score_name):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    attn = Attention(build_score(score_name, 5, 5)).eval()
    q, k, v = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 6, 5, generator=gen), torch.randn(2, 6, 4,
                                                                                                    generator=gen)
    mask = torch.rand(2, 1, 6, generator=gen) < 0.3
    perm = torch.randperm(6, generator=gen)
    ctx, w = attn(q, k, v, mask=mask)
    ctx_p, w_p = attn(q, k[:, perm], v[:, perm], mask=mask[..., perm])
    torch.testing.assert_close(ctx_p, ctx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_p, w[..., perm], atol=1e-6, rtol=1e-5)


def test_temperature_sharpens():
    scores = torch.tensor([[1.0, 2.0, 3.0]])
    hot = Softmax(temperature=0.1)(scores)
    cold = Softmax(temperature=10.0)(scores)
    assert hot.max() > torch.softmax(scores, -1).max() > cold.max()
    with pytest.raises(ValueError, match="temperature"):
        Softmax(temperature=0.0)


# -- score functions -----------------------------------------------------------------------------------------


def test_score_formulas():
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    torch.testing.assert_close(DotScore()(q, k), torch.einsum("bqd,bkd->bqk", q, k))
    torch.testing.assert_close(ScaledDotScore()(q, k), torch.einsum("bqd,bkd->bqk", q, k) / 2.0)
    general = GeneralScore(4, 4)
    w = general.key_proj.weight  # maps keys into the query space: q^T W k
    torch.testing.assert_close(general(q, k), torch.einsum("bqd,de,bke->bqk", q, w, k))
    add = AdditiveScore(4, 4, hidden_dim=6)
    expected = torch.einsum(
        "bqkh,h->bqk",
        torch.tanh((q @ add.query_proj.weight.T).unsqueeze(2) + (k @ add.key_proj.weight.T + add.key_proj.bias)
                   .unsqueeze(1)),
        add.v.weight[0],
    )
    torch.testing.assert_close(add(q, k), expected)
    loc = LocationScore(4, max_keys=8)
    torch.testing.assert_close(loc(q, k), (q @ loc.proj.weight.T + loc.proj.bias)[..., :5])
    with pytest.raises(ValueError, match="max_keys"):
        loc(q, torch.randn(2, 9, 4))


def test_project_keys_once_equals_direct():
    torch.manual_seed(0)
    for name in SCORE_NAMES:
        s = build_score(name, 4, 4, max_keys=8)
        q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
        torch.testing.assert_close(s.score(q, s.project_keys(k)), s(q, k))


def test_scores_support_heads():
    q, k = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 5, 8)  # (B, H, T, d)
    assert ScaledDotScore()(q, k).shape == (2, 4, 3, 5)
    assert AdditiveScore(8, 8)(q, k).shape == (2, 4, 3, 5)


@pytest.mark.parametrize("name", SCORE_NAMES)
def test_gradcheck_every_score(name):
    torch.manual_seed(0)
    score = build_score(name, 3, 3, hidden_dim=4, max_keys=5).double()
    q = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(score, (q, k))
    # through the whole attention as well (masked softmax included)
    attn = Attention(score).double()
    mask = torch.tensor([[False, False, True, False]]).unsqueeze(0).expand(2, 1, 4)
    assert torch.autograd.gradcheck(lambda q, k: attn(q, k, mask=mask)[0], (q, k))


def test_build_errors_name_the_choice():
    with pytest.raises(ValueError, match="unknown score 'cosine'"):
        build_score("cosine", 3, 3)
    with pytest.raises(ValueError, match="query_dim == key_dim"):
        build_score("dot", 3, 4)
    with pytest.raises(ValueError, match="unknown normalizer"):
        build_normalizer("sparsemax")


# -- normalizers -----------------------------------------------------------------------------------------------


def test_sigmoid_gates_masked_to_zero():
    scores = torch.randn(2, 3, 4)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[..., -1] = True
    w = Sigmoid()(scores, mask)
    assert (w[..., -1] == 0).all()
    torch.testing.assert_close(w[..., :-1], torch.sigmoid(scores[..., :-1]))


def test_hardmax_forward_one_hot_backward_softmax():
    scores = torch.tensor([[[0.1, 2.0, 0.3, 5.0]]], requires_grad=True)
    mask = torch.tensor([[[False, False, False, True]]])  # the best key is masked
    w = HardMax()(scores, mask)
    assert w.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]
    (w * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    soft_scores = scores.detach().clone().requires_grad_(True)
    (masked_softmax(soft_scores, mask) * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    torch.testing.assert_close(scores.grad, soft_scores.grad)
    assert (HardMax()(torch.randn(1, 1, 3), torch.ones(1, 1, 3, dtype=torch.bool)) == 0).all()


# -- the Attention module ----------------------------------------------------------------------------------------


def test_attention_returns_context_and_weights():
    torch.manual_seed(0)
    attn = Attention(DotScore())
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    kpm = torch.tensor([[False] * 5, [False, False, True, True, True]])
    ctx, w = attn(q, k, v, mask=merge_masks(kpm, None))
    assert ctx.shape == (2, 3, 6) and w.shape == (2, 3, 5)
    assert (w[1, :, 2:] == 0).all()
    expected = torch.softmax((q @ k.transpose(1, 2)).masked_fill(kpm[:, None], float("-inf")), -1) @ v
    torch.testing.assert_close(ctx, expected)


def test_merge_masks():
    kpm = torch.tensor([[False, True]])
    causal = torch.tensor([[False, True], [False, False]])
    merged = merge_masks(kpm, causal)
    assert merged.tolist() == [[[False, True], [False, True]]]
    assert merge_masks(None, None) is None


def test_attention_dropout_only_in_training():
    attn = Attention(DotScore(), dropout=0.5)
    q, k = torch.randn(1, 2, 4), torch.randn(1, 8, 4)
    attn.eval()
    torch.testing.assert_close(attn(q, k)[0], attn(q, k)[0])
    attn.train()
    torch.manual_seed(0)
    a = attn(q, k)[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, attn(q, k)[0])


# -- capture ---------------------------------------------------------------------------------------------------------


class _TwoAttentions(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = Attention(DotScore())
        self.second = Attention(AdditiveScore(4, 4))

    def forward(self, q, k):
        ctx, _ = self.first(q, k)
        ctx, _ = self.second(ctx, k)
        return ctx


def test_capture_records_every_module_by_name_and_stops_after():
    model = _TwoAttentions()
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    with capture_attention(model) as maps:
        model(q, k)
        model(q, k)
    assert set(maps) == {"first", "second"}
    assert len(maps["first"]) == 2 and maps["first"][0].shape == (2, 3, 5)
    assert not maps["first"][0].requires_grad
    model(q, k)  # after the block nothing is recorded any more
    assert len(maps["first"]) == 2
    assert not model.first.capturing


def test_capture_arms_only_outermost():
    from seq2seq_attn.attention import MultiHeadAttention

    mha = MultiHeadAttention(8, 2)
    holder = torch.nn.ModuleDict({"mha": mha})
    with capture_attention(holder) as maps:
        x = torch.randn(1, 3, 8)
        mha(x, x, x)
    assert list(maps) == ["mha"]  # not also "mha.attention"
    assert maps["mha"][0].shape == (1, 2, 3, 3)
