"""Self-attention modules of the vision package: numerical checks against direct computations and the core."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _vision_runs import randomize_zero_parameters

from seq2seq_attn.attention import Attention, DotScore, MultiHeadAttention, Softmax, capture_attention
from vision import create_attention
from vision.attention.anl import PYRAMID_SIZES, PyramidPool
from vision.attention.criss_cross import CrissCross, CrissCrossAttention
from vision.attention.non_local import NonLocal

SELF_ATTENTION = ["non_local", "non_local_gaussian", "non_local_dot", "non_local_concat", "da_pam", "da_cam",
                  "danet", "criss_cross", "gc", "apnb", "afnb", "ocr", "a2", "sagan"]


def flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, HW, C)


def activate(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialized gammas and output projections random values, so the attention term shows."""
    return randomize_zero_parameters(module, seed)


def run_captured(module: torch.nn.Module, *inputs: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Output and the captured attention maps {name: [weights per call]}."""
    with capture_attention(module) as maps:
        out = module(*inputs)
    return out, maps


def check_rows_sum_to_one(weights: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert weights.shape == shape
    torch.testing.assert_close(weights.sum(-1), torch.ones(shape[:-1]))


def conv(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv (possibly wrapped in Sequential) applied by hand, on flattened positions: (B, HW, Cout)."""
    layer = layer[0] if isinstance(layer, torch.nn.Sequential) else layer
    out = flat(x) @ layer.weight.flatten(1).T
    return out if layer.bias is None else out + layer.bias


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# -- every module here -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SELF_ATTENTION)
def test_starts_as_identity_and_all_weights_learn(name: str) -> None:
    """At initialization the residual term is zero (gamma = 0 or a zeroed output projection); once it is not,
    every parameter gets a non-zero gradient (the attention path is really connected, and no parameter is
    redundant: key biases, which a softmax cancels, are left out)."""
    m = create_attention(name, 16)
    x = torch.randn(2, 16, 5, 6)
    torch.testing.assert_close(m(x), x)
    activate(m)
    m(x).square().sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


# -- Non-local ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian"])
def test_non_local_affinity_rows_sum_to_one(mode: str) -> None:
    _, maps = run_captured(NonLocal(8, mode=mode), torch.randn(2, 8, 4, 5))
    check_rows_sum_to_one(maps["attention"][0], (2, 20, 20))


@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian", "dot", "concat"])
def test_non_local_matches_the_paper_formula(mode: str) -> None:
    """y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j), z = W_z y + x, computed directly for each pairwise function."""
    m = activate(NonLocal(6, mode=mode))
    x = torch.randn(2, 6, 3, 4)
    n = 12
    g = conv(m.value, x)  # (B, N, Ci)
    if mode == "gaussian":
        theta, phi = flat(x), flat(x)
    else:
        theta, phi = conv(m.query, x), conv(m.key, x)
    if mode in ("embedded_gaussian", "gaussian"):
        f = torch.exp(theta @ phi.transpose(1, 2))
        y = f @ g / f.sum(-1, keepdim=True)
    elif mode == "dot":
        y = (theta @ phi.transpose(1, 2)) @ g / n
    else:
        w_q, w_k = m.attention.score.query_proj.weight[0], m.attention.score.key_proj.weight[0]
        f = F.relu((theta @ w_q)[:, :, None] + (phi @ w_k)[:, None, :])
        y = f @ g / n
    expected = flat(x) + conv(m.out_proj, y.transpose(1, 2).reshape(2, -1, 3, 4))
    torch.testing.assert_close(flat(m(x)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("use_scale", [False, True])
def test_non_local_embedded_gaussian_equals_core_single_head_attention(use_scale: bool) -> None:
    """Same projections: theta/phi/g = the query/key/value projections of a one-head MultiHeadAttention,
    W_z = its output projection; Non-local's unscaled dot product = the scaled one with theta * sqrt(d)."""
    c = 8
    m = activate(NonLocal(c, rd_ratio=1.0, use_scale=use_scale))
    mha = MultiHeadAttention(c, 1)
    theta, phi, g, wz = m.query[0], m.key[0], m.value[0], m.out_proj[0]
    scale = 1.0 if use_scale else math.sqrt(c)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([theta.weight.flatten(1) * scale, phi.weight.flatten(1),
                                            g.weight.flatten(1)]))
        mha.in_proj_bias.copy_(torch.cat([theta.bias * scale, torch.zeros(c), g.bias]))  # phi: no bias
        mha.out_proj.weight.copy_(wz.weight.flatten(1))
        mha.out_proj.bias.copy_(wz.bias)
    x = torch.randn(2, c, 5, 3)
    seq = flat(x)  # (B, HW, C)
    expected = seq + mha(seq, seq, seq)[0]
    torch.testing.assert_close(flat(m(x)), expected, rtol=1e-4, atol=1e-5)


def test_non_local_sub_sample_pools_keys() -> None:
    m = NonLocal(8, sub_sample=True)
    y, maps = run_captured(m, torch.randn(1, 8, 5, 7))
    assert y.shape == (1, 8, 5, 7)
    assert maps["attention"][0].shape == (1, 35, 3 * 4)  # keys: ceil(5/2) x ceil(7/2)


def test_non_local_bad_arguments() -> None:
    with pytest.raises(ValueError, match="non-local mode"):
        NonLocal(8, mode="cosine")
    with pytest.raises(ValueError, match="norm_layer"):
        NonLocal(8, norm_layer="ln")
    with pytest.raises(ValueError, match="rd_ratio"):
        NonLocal(8, rd_ratio=0)


def test_non_local_with_batch_norm_zeroes_its_scale() -> None:
    m = NonLocal(8, norm_layer="bn")
    assert isinstance(m.out_proj[1], torch.nn.BatchNorm2d) and not m.out_proj[1].weight.any()
    x = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(m(x), x)


# -- DA-Net ------------------------------------------------------------------------------------------------


def test_da_pam_and_cam_match_the_reference_computation() -> None:
    x = torch.randn(2, 16, 4, 3)
    pam = activate(create_attention("da_pam", 16))
    out, maps = run_captured(pam, x)
    check_rows_sum_to_one(maps["attention"][0], (2, 12, 12))
    q, k, v = conv(pam.query, x), conv(pam.key, x), conv(pam.value, x)  # query/key: C/8 = 2 channels
    assert q.shape[-1] == 2
    expected = flat(x) + pam.gamma * torch.softmax(q @ k.transpose(1, 2), -1) @ v
    torch.testing.assert_close(flat(out), expected, rtol=1e-4, atol=1e-5)

    cam = activate(create_attention("da_cam", 16))
    out, maps = run_captured(cam, x)
    check_rows_sum_to_one(maps["attention"][0], (2, 16, 16))
    feats = x.flatten(2)  # (B, C, HW)
    energy = feats @ feats.transpose(1, 2)
    attn = torch.softmax(energy.amax(-1, keepdim=True) - energy, -1)  # the reference code's energy_new
    torch.testing.assert_close(out.flatten(2), feats + cam.gamma * attn @ feats, rtol=1e-4, atol=1e-4)


def test_danet_sums_both_branches() -> None:
    m = activate(create_attention("danet", 16))
    x = torch.randn(2, 16, 3, 5)
    torch.testing.assert_close(m(x), m.pam(x) + m.cam(x) - x)
    _, maps = run_captured(m, x)
    assert maps["pam.attention"][0].shape == (2, 15, 15) and maps["cam.attention"][0].shape == (2, 16, 16)


# -- CC-Net ------------------------------------------------------------------------------------------------


def _impulse_response(recurrence: int) -> torch.Tensor:
    torch.manual_seed(1)
    m = CrissCross(8, recurrence=recurrence)
    with torch.no_grad():
        m.gamma.fill_(1.0)
    x = torch.randn(1, 8, 5, 7)
    bumped = x.clone()
    bumped[0, :, 2, 3] += 5.0  # impulse at (2, 3)
    with torch.no_grad():
        return (m(bumped) - m(x)).abs().sum(1)[0]  # (H, W)


def test_criss_cross_recurrence_2_reaches_every_position() -> None:
    assert (_impulse_response(2) > 1e-6).all()


def test_criss_cross_recurrence_1_reaches_only_the_cross() -> None:
    change = _impulse_response(1)
    cross = torch.zeros(5, 7, dtype=torch.bool)
    cross[2, :] = True
    cross[:, 3] = True
    assert (change[cross] > 1e-6).all()
    assert (change[~cross] == 0).all()


def test_criss_cross_equals_core_attention_with_a_criss_cross_mask() -> None:
    """The O(HW (H+W)) layout = the core Attention over all positions, everything off the cross masked;
    the centre counts once in the joint softmax over H + W - 1 positions."""
    b, h, w, c = 2, 4, 6, 3
    q, k, v = torch.randn(b, h, w, c), torch.randn(b, h, w, c), torch.randn(b, h, w, 5)
    attention = CrissCrossAttention()
    with capture_attention(attention) as maps:
        context, weights = attention(q, k, v)
    assert weights.shape == (b, h, w, h + w) and maps[""][0].shape == weights.shape
    torch.testing.assert_close(weights.sum(-1), torch.ones(b, h, w))
    rows, cols = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    off_cross = (rows[:, None] != rows[None, :]) & (cols[:, None] != cols[None, :])  # (HW, HW)
    ref_context, ref_weights = Attention(DotScore(), Softmax())(q.flatten(1, 2), k.flatten(1, 2), v.flatten(1, 2),
                                                                mask=off_cross)
    torch.testing.assert_close(context.flatten(1, 2), ref_context, rtol=1e-5, atol=1e-6)
    ref = ref_weights.view(b, h, w, h, w)
    i, j = 1, 2
    torch.testing.assert_close(weights[:, i, j, h:], ref[:, i, j, i, :])  # row i, centre included
    col = weights[:, i, j, :h]
    assert (col[:, i] == 0).all()  # the centre's duplicate in the column is masked
    torch.testing.assert_close(col[:, [0, 2, 3]], ref[:, i, j, [0, 2, 3], j])


def test_criss_cross_recurrence_shares_one_module() -> None:
    m = activate(CrissCross(8, recurrence=2))
    x = torch.randn(2, 8, 3, 4)
    torch.testing.assert_close(m(x), m.step(m.step(x)))
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in CrissCross(8, recurrence=3).parameters())
    with pytest.raises(ValueError, match="recurrence"):
        CrissCross(8, recurrence=0)


# -- GC ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["add", "mul"])
def test_gc_context_modelling_and_fusion(fusion: str) -> None:
    m = activate(create_attention("gc", 16, fusion=fusion))
    x = torch.randn(2, 16, 3, 5)
    out, maps = run_captured(m, x)
    weights = torch.softmax(flat(x) @ m.context_query[0, 0], dim=-1)  # (B, HW)
    torch.testing.assert_close(maps["attention"][0][:, 0], weights)
    context = (weights.unsqueeze(1) @ flat(x)).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1)
    term = m.transform(context)
    expected = x + term if fusion == "add" else x * torch.sigmoid(term)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="fusion"):
        create_attention("gc", 16, fusion="concat")


# -- ANL ---------------------------------------------------------------------------------------------------


def test_pyramid_pool_samples_110_anchors() -> None:
    x = torch.randn(2, 4, 9, 10)
    anchors = PyramidPool()(x)
    assert anchors.shape == (2, 4, 110, 1) and sum(s * s for s in PYRAMID_SIZES) == 110
    torch.testing.assert_close(anchors[:, :, 0, 0], x.mean((2, 3)))  # the 1x1 level is the global mean
    torch.testing.assert_close(anchors[:, :, 1:10, 0], F.adaptive_avg_pool2d(x, 3).flatten(2))


def test_apnb_attends_to_pyramid_anchors() -> None:
    m = activate(create_attention("apnb", 16))
    x = torch.randn(2, 16, 6, 7)
    out, maps = run_captured(m, x)
    check_rows_sum_to_one(maps["attention"][0], (2, 42, 110))
    assert m.query is m.key  # queries and keys share one embedding, as in the reference code
    emb = F.relu(conv(m.key, x))  # (B, HW, 8)
    anchors = PyramidPool()(m.key(x))[..., 0].transpose(1, 2)  # (B, 110, 8)
    values = PyramidPool()(m.value(x))[..., 0].transpose(1, 2)
    y = torch.softmax(emb @ anchors.transpose(1, 2) / math.sqrt(8), -1) @ values
    expected = flat(x) + conv(m.out_proj, y.transpose(1, 2).reshape(2, 8, 6, 7))
    torch.testing.assert_close(flat(out), expected, rtol=1e-4, atol=1e-5)


def test_afnb_fuses_a_low_level_map_of_another_size() -> None:
    m = activate(create_attention("afnb", 16, low_channels=8))
    high, low = torch.randn(2, 16, 4, 5), torch.randn(2, 8, 9, 11)
    out, maps = run_captured(m, high, low)
    assert out.shape == high.shape and maps["attention"][0].shape == (2, 20, 110)
    other = low.clone()
    other[:, :, 0, 0] += 3.0
    assert not torch.allclose(m(high, other), out)  # the output depends on the low-level map
    same = activate(create_attention("afnb", 16))
    x = torch.randn(1, 16, 3, 3)
    torch.testing.assert_close(same(x), same(x, x))  # single-input form fuses x with itself


# -- OCR ---------------------------------------------------------------------------------------------------


def test_ocr_with_given_coarse_logits() -> None:
    m = activate(create_attention("ocr", 16, num_classes=5))
    x, logits = torch.randn(2, 16, 4, 6), torch.randn(2, 3, 4, 6)  # K = 3 given regions
    out, maps = run_captured(m, x, logits)
    regions_w = maps["gather.attention"][0]
    torch.testing.assert_close(regions_w, torch.softmax(logits.flatten(2), -1))  # soft object regions
    check_rows_sum_to_one(maps["attention"][0], (2, 24, 3))
    regions = (regions_w @ flat(x)).transpose(1, 2).unsqueeze(-1)  # (B, C, K, 1)
    q = flat(m.pixel(x))
    k, v = flat(m.region(regions)), flat(m.down(regions))
    y = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), -1) @ v
    expected = flat(x) + conv(m.out_proj, y.transpose(1, 2).reshape(2, -1, 4, 6))
    torch.testing.assert_close(flat(out), expected, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert m.coarse_head.weight.grad is None  # given logits bypass the built-in head
    torch.testing.assert_close(m(x), m(x, m.coarse_head(x)))  # single-input form: its own coarse logits
    with pytest.raises(ValueError, match="coarse_logits"):
        m(x, torch.randn(2, 3, 4, 5))


# -- A2 and SAGAN ------------------------------------------------------------------------------------------


def test_a2_double_attention_matches_the_paper() -> None:
    m = activate(create_attention("a2", 16))
    x = torch.randn(2, 16, 3, 4)
    a = conv(m.features, x)  # (B, HW, c_m)
    gather = torch.softmax(conv(m.gather_maps, x).transpose(1, 2), -1)  # (B, c_n, HW), softmax over positions
    descriptors = gather @ a  # G^T: (B, c_n, c_m)
    distribute = torch.softmax(conv(m.distribute_maps, x), -1)  # (B, HW, c_n), softmax over descriptors
    z = distribute @ descriptors
    expected = flat(x) + conv(m.out_proj, z.transpose(1, 2).reshape(2, -1, 3, 4))
    out, maps = run_captured(m, x)
    torch.testing.assert_close(flat(out), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(maps["gather.attention"][0], gather)
    torch.testing.assert_close(maps["distribute"][0], distribute)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_sagan_matches_the_paper(spectral_norm: bool) -> None:
    m = activate(create_attention("sagan", 16, spectral_norm=spectral_norm)).eval()
    x = torch.randn(2, 16, 4, 4)
    out = m(x)  # eval: spectral norm uses its current estimate, no power iteration
    f, g, h = (flat(layer(x)) for layer in (m.query, m.key, m.value))  # (B, HW, C/8)
    o = torch.softmax(f @ g.transpose(1, 2), -1) @ h
    expected = x + m.gamma * m.out_proj(o.transpose(1, 2).reshape(2, 2, 4, 4))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert hasattr(m.query, "parametrizations") == spectral_norm
