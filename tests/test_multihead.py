"""MultiHeadAttention: its two paths agree, and both agree with torch.nn.MultiheadAttention."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.attention import MultiHeadAttention, capture_attention


def _pair(embed_dim=16, num_heads=4, kdim=None, vdim=None, bias=True, batch_first=True):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(embed_dim, num_heads, bias=bias, kdim=kdim, vdim=vdim,
                                      batch_first=batch_first).eval()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias, kdim=kdim, vdim=vdim,
                              batch_first=batch_first).eval()
    ours.load_state_dict(ref.state_dict())  # same parameter names
    return ref, ours


def _masks(kind, b, tq, tk, heads):
    gen = torch.Generator().manual_seed(1)
    kpm = attn_mask = None
    if kind in ("padding", "both"):
        lengths = torch.randint(1, tk + 1, (b,), generator=gen)
        kpm = torch.arange(tk)[None] >= lengths[:, None]  # (B, Tk), at least one key left
    if kind in ("causal", "both"):
        attn_mask = torch.ones(tq, tk, dtype=torch.bool).triu(tk - tq + 1)
    if kind == "float":
        attn_mask = torch.randn(tq, tk, generator=gen)
    if kind == "per_head":
        attn_mask = torch.rand(b * heads, tq, tk, generator=gen) < 0.3
        attn_mask[..., 0] = False
    return kpm, attn_mask


CASES = [
    # (cross attention?, kdim, vdim, mask kind)
    (False, None, None, "none"),
    (False, None, None, "padding"),
    (False, None, None, "causal"),
    (False, None, None, "both"),
    (False, None, None, "float"),
    (False, None, None, "per_head"),
    (True, None, None, "padding"),
    (True, 12, 10, "none"),
    (True, 12, 10, "padding"),
]


@pytest.mark.parametrize("cross,kdim,vdim,mask_kind", CASES)
def test_matches_torch_both_paths(cross, kdim, vdim, mask_kind):
    b, tq, tk, e, h = 3, 5, 7 if cross else 5, 16, 4
    ref, ours = _pair(e, h, kdim, vdim)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(b, tq, e, generator=gen)
    if cross:
        k = torch.randn(b, tk, kdim or e, generator=gen)
        v = torch.randn(b, tk, vdim or e, generator=gen) if vdim else k
    else:
        k = v = x
    kpm, attn_mask = _masks(mask_kind, b, tq, tk, h)
    ref_out, ref_w = ref(x, k, v, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True)
    fast, none = ours(x, k, v, key_padding_mask=kpm, attn_mask=attn_mask)
    slow, w = ours(x, k, v, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True)
    assert none is None
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-5)
    _, per_head = ours(x, k, v, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                       average_attn_weights=False)
    _, ref_per_head = ref(x, k, v, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                          average_attn_weights=False)
    torch.testing.assert_close(per_head, ref_per_head, atol=1e-5, rtol=1e-5)


def test_is_causal_without_mask_equals_explicit_causal_mask():
    ref, ours = _pair()
    x = torch.randn(2, 6, 16)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(6)
    ref_out, _ = ref(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)
    for need in (False, True):
        out, _ = ours(x, x, x, is_causal=True, need_weights=need)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)


def test_sequence_first_layout():
    ref, ours = _pair(batch_first=False)
    x = torch.randn(5, 2, 16)  # (T, B, E)
    torch.testing.assert_close(ours(x, x, x)[0], ref(x, x, x)[0], atol=1e-5, rtol=1e-5)


def test_no_bias():
    ref, ours = _pair(bias=False)
    x = torch.randn(2, 4, 16)
    torch.testing.assert_close(ours(x, x, x)[0], ref(x, x, x)[0], atol=1e-5, rtol=1e-5)


def test_gradients_agree_between_paths():
    _, ours = _pair()
    ours.train()  # dropout is 0, so training mode is deterministic
    x = torch.randn(2, 5, 16, requires_grad=True)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    grads = []
    for need in (False, True):
        ours.zero_grad()
        x.grad = None
        out, _ = ours(x, x, x, key_padding_mask=kpm, need_weights=need)
        out.square().sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in ours.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fully_masked_query_gives_zero_context_in_both_paths():
    _, ours = _pair()
    x = torch.randn(2, 3, 16)
    kpm = torch.tensor([[True, True, True], [False, False, True]])
    fast, _ = ours(x, x, x, key_padding_mask=kpm)
    slow, w = ours(x, x, x, key_padding_mask=kpm, need_weights=True)
    assert torch.isfinite(fast).all() and torch.isfinite(slow).all()
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    # a query with no key gets only the output projection's bias
    torch.testing.assert_close(fast[0], ours.out_proj.bias.expand(3, 16))
    assert (w[0] == 0).all()


def test_capture_forces_weights_path_only_while_active():
    _, ours = _pair()
    x = torch.randn(2, 4, 16)
    calls = []
    ours.attention.register_forward_hook(lambda *a: calls.append(1))
    ours(x, x, x)
    assert calls == []  # the fused path does not build weights
    with capture_attention(ours) as maps:
        out, _ = ours(x, x, x)
    assert calls == [1] and maps[""][0].shape == (2, 4, 4, 4)
    torch.testing.assert_close(out, ours(x, x, x)[0], atol=1e-5, rtol=1e-5)
    ours(x, x, x)
    assert calls == [1]


def test_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
