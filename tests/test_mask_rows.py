"""Rows with no allowed key, under the project's one mask rule (boolean True = not allowed, float -inf = not
allowed): zero weights and zero context on every path of ``MultiHeadAttention`` (fused, weights, capture) and in
the core ``Attention`` (mask and ``bias``), finite gradients, the same result with and without weights, and
agreement with ``torch.nn.MultiheadAttention`` wherever every query has an allowed key.

A property test over random masks of both kinds: key padding masks, 2-D, 3-D (B*H) and per-head (B, H) masks.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_attn.attention import Attention, MultiHeadAttention, ScaledDotScore, capture_attention, merge_masks

HEAD_DIM = 4


def _as_kind(not_allowed: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """The same "not allowed" pattern as a boolean mask, or as a float one with finite values elsewhere."""
    if kind == "bool":
        return not_allowed
    values = torch.randn(not_allowed.shape, generator=gen)
    return values.masked_fill(not_allowed, float("-inf"))


def _parts(mask: torch.Tensor | None) -> tuple[torch.Tensor | bool, torch.Tensor | float]:
    """Reference reading of one mask: (not allowed, finite additive part)."""
    if mask is None:
        return False, 0.0
    if mask.dtype == torch.bool:
        return mask, 0.0
    return torch.isneginf(mask), torch.where(torch.isneginf(mask), 0.0, mask)


def _reference(q, k, v, not_allowed, additive):
    """softmax(q k^T / sqrt(d) + additive) over the allowed keys; rows with none: zeros. q (..., Tq, d)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)) + additive
    not_allowed = not_allowed.expand_as(scores)
    has_key = (~not_allowed).any(-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(not_allowed | ~has_key, -1e30), -1) * has_key
    return weights @ v, weights


@st.composite
def mha_case(draw):
    b, heads = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2]))
    tq, tk = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    kpm = attn_mask = None
    kpm_kind = draw(st.sampled_from([None, "bool", "float"]))
    if kpm_kind:
        pad = torch.rand(b, tk, generator=gen) < draw(st.sampled_from([0.0, 0.5, 1.0]))
        pad[0] = draw(st.booleans()) or pad[0]  # often one sequence with no key at all
        kpm = _as_kind(pad, kpm_kind, gen)
    am_kind = draw(st.sampled_from([None, "bool", "float"]))
    if am_kind:
        shape = draw(st.sampled_from([(tq, tk), (b * heads, tq, tk), (b, heads, tq, tk)]))
        attn_mask = _as_kind(torch.rand(shape, generator=gen) < draw(st.sampled_from([0.2, 0.6, 1.0])), am_kind, gen)
    return b, heads, tq, tk, gen, kpm, attn_mask


@settings(max_examples=40, deadline=None)
@given(mha_case())
def test_multihead_rows_with_no_allowed_key(case):
    b, heads, tq, tk, gen, kpm, attn_mask = case
    e = heads * HEAD_DIM
    torch.manual_seed(0)
    mha = MultiHeadAttention(e, heads).eval()
    x, mem = torch.randn(b, tq, e, generator=gen), torch.randn(b, tk, e, generator=gen)

    # reference: the projections by hand, the masks read independently of the code under test
    q, k, v = mha.project_query(x), mha.project_key(mem), mha.project_value(mem)  # (B, H, T, d)
    am = attn_mask.view(b, heads, tq, tk) if attn_mask is not None and attn_mask.dim() == 3 else attn_mask
    kpm_na, kpm_add = _parts(None if kpm is None else kpm[:, None, None, :])
    am_na, am_add = _parts(am)
    not_allowed = torch.zeros(b, heads, tq, tk, dtype=torch.bool) | kpm_na | am_na
    ctx, ref_weights = _reference(q, k, v, not_allowed, kpm_add + am_add)
    ref_out = mha.out_proj(ctx.transpose(1, 2).reshape(b, tq, e))
    empty = not_allowed.all(-1)  # (B, H, Tq)

    outputs = {}
    for path in ("fast", "weights", "capture"):
        xg = x.clone().requires_grad_(True)
        mha.zero_grad()
        if path == "capture":
            with capture_attention(mha) as maps:
                out, _ = mha(xg, mem, mem, key_padding_mask=kpm, attn_mask=attn_mask)
            weights = maps[""][0]
        else:
            out, weights = mha(xg, mem, mem, key_padding_mask=kpm, attn_mask=attn_mask,
                               need_weights=path == "weights", average_attn_weights=False)
        out.square().sum().backward()
        assert torch.isfinite(xg.grad).all(), path
        assert all(torch.isfinite(p.grad).all() for p in mha.parameters() if p.grad is not None), path
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        outputs[path] = out.detach()
        if weights is not None:
            torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)
            assert (weights[empty] == 0).all()
    # the same result whether or not weights are requested
    torch.testing.assert_close(outputs["fast"], outputs["weights"], atol=1e-5, rtol=1e-5)

    same_kind = kpm is None or attn_mask is None or (kpm.dtype == torch.bool) == (attn_mask.dtype == torch.bool)
    if not empty.any() and same_kind:
        ref = torch.nn.MultiheadAttention(e, heads, batch_first=True).eval()
        ref.load_state_dict(mha.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_mask = attn_mask.reshape(b * heads, tq, tk) if attn_mask is not None and attn_mask.dim() == 4 \
                else attn_mask  # torch takes per-head masks as (B*H, Tq, Tk)
            expected, _ = ref(x, mem, mem, key_padding_mask=kpm, attn_mask=torch_mask, need_weights=False)
        torch.testing.assert_close(outputs["fast"], expected, atol=1e-5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.sampled_from(["bool", "float", None]),
       st.sampled_from([0.0, 0.5, 1.0]), st.booleans(), st.integers(0, 2**31 - 1))
def test_core_attention_rows_with_no_allowed_key(b, tq, tk, mask_kind, density, empty_bias_row, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, t, HEAD_DIM, generator=gen) for t in (tq, tk, tk))
    mask = None
    if mask_kind:
        mask = _as_kind(torch.rand(b, tq, tk, generator=gen) < density, mask_kind, gen)
    bias = torch.randn(b, tq, tk, generator=gen)
    if empty_bias_row:
        bias[0, -1] = float("-inf")  # the last query of the first sequence: no allowed key through the bias
    mask_na, mask_add = _parts(mask)
    bias_na, bias_add = _parts(bias)
    not_allowed = torch.zeros(b, tq, tk, dtype=torch.bool) | mask_na | bias_na
    ref_ctx, ref_weights = _reference(q, k, v, not_allowed, mask_add + bias_add)

    qg = q.clone().requires_grad_(True)
    ctx, weights = Attention(ScaledDotScore())(qg, k, v, mask=mask, bias=bias)
    (ctx.square().sum() + weights.sum()).backward()
    assert torch.isfinite(qg.grad).all()
    torch.testing.assert_close(ctx, ref_ctx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)
    empty = not_allowed.all(-1)
    assert (weights[empty] == 0).all() and (ctx[empty] == 0).all()


def test_the_issue_case_float_key_padding_all_minus_inf():
    """MultiHeadAttention(8, 2), a float key padding mask that is -inf for every key of one sequence."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 3, 8)
    kpm = torch.zeros(2, 3)
    kpm[0] = float("-inf")
    fast, _ = mha(x, x, x, key_padding_mask=kpm)
    slow, weights = mha(x, x, x, key_padding_mask=kpm, need_weights=True)
    with capture_attention(mha) as maps:
        captured, _ = mha(x, x, x, key_padding_mask=kpm)
    for out in (fast, slow, captured):
        torch.testing.assert_close(out[0], mha.out_proj.bias.expand(3, 8))  # zero context: only the bias
        torch.testing.assert_close(out, fast)
    assert (weights[0] == 0).all() and (maps[""][0][0] == 0).all()
    assert torch.isfinite(weights).all()


def test_merge_masks_mixes_kinds():
    kpm = torch.tensor([[False, True]])
    causal = torch.tensor([[0.0, float("-inf")], [0.5, 0.0]])
    merged = merge_masks(kpm, causal)
    assert merged.dtype == torch.float32
    assert merged.tolist() == [[[0.0, float("-inf")], [0.5, float("-inf")]]]
    both = merge_masks(kpm.float().masked_fill(kpm, float("-inf")), None, heads=True)
    assert both.shape == (1, 1, 1, 2)
    assert F.softmax(torch.zeros(1, 2) + merged[0, 1], -1).tolist() == [[1.0, 0.0]]
