"""The gating modules against their papers: parameter counts from the papers' formulas, ECA's adaptive kernel
size, and numerical checks against direct computations of the published equations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import capture_attention
from vision import create_attention
from vision.attention.eca import eca_kernel_size
from vision.attention.fca import dct_basis
from vision.attention.gsop import covariance_pool


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def captured(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    with capture_attention(module) as maps:
        y = module(x)
    return y, maps


# ---------------------------------------------------------------- parameter counts (papers' formulas)

@pytest.mark.parametrize("channels, rd_ratio", [(32, 1 / 16), (64, 1 / 8), (48, 1 / 4)])
def test_se_parameter_count(channels, rd_ratio):
    rd = round(channels * rd_ratio)  # C / r
    assert n_params(create_attention("se", channels, rd_ratio=rd_ratio)) == 2 * channels * rd + rd + channels
    assert n_params(create_attention("se", channels, rd_ratio=rd_ratio, bias=False)) == 2 * channels * rd


def test_se_rd_channels_and_divisor():
    assert n_params(create_attention("se", 32, rd_channels=5)) == 2 * 32 * 5 + 5 + 32
    # timm's convention: round C/r to a multiple of 8 (32/16 = 2 -> 8)
    assert n_params(create_attention("se", 32, rd_divisor=8)) == 2 * 32 * 8 + 8 + 32


@pytest.mark.parametrize("channels, k", [(2, 1), (8, 3), (16, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5),
                                         (1024, 5), (2048, 7)])
def test_eca_adaptive_kernel_size(channels, k):
    # psi(C) = |log2(C)/gamma + b/gamma|_odd, gamma = 2, b = 1
    t = int((math.log2(channels) + 1) / 2)
    assert k == (t if t % 2 else t + 1)
    assert eca_kernel_size(channels) == k
    module = create_attention("eca", channels)
    assert module.kernel_size == k and n_params(module) == k  # ECA's only parameters: the k conv taps


def test_eca_explicit_kernel_size_and_errors():
    assert n_params(create_attention("eca", 64, kernel_size=7)) == 7
    assert eca_kernel_size(64, gamma=1, beta=0) == 7  # log2(64) = 6 -> next odd
    with pytest.raises(ValueError, match="kernel_size"):
        create_attention("eca", 64, kernel_size=4)


@pytest.mark.parametrize("channels, rd_ratio, kernel_size", [(32, 1 / 16, 7), (64, 1 / 8, 3)])
def test_cbam_parameter_count(channels, rd_ratio, kernel_size):
    rd = round(channels * rd_ratio)
    channel = 2 * channels * rd + rd + channels  # shared MLP C -> C/r -> C
    spatial = 2 * kernel_size**2 + 2  # conv over [avg; max] (2 -> 1, no bias) + BN scale and shift
    kw = dict(rd_ratio=rd_ratio)
    assert n_params(create_attention("cbam_channel", channels, **kw)) == channel
    assert n_params(create_attention("cbam_spatial", channels, kernel_size=kernel_size)) == spatial
    assert n_params(create_attention("cbam", channels, kernel_size=kernel_size, **kw)) == channel + spatial
    # without the batch norm: the plain conv of the paper's equation, with its bias
    assert n_params(create_attention("cbam_spatial", channels, kernel_size=kernel_size, norm=False)) == \
        2 * kernel_size**2 + 1


def test_scse_parameter_counts():
    c = 32
    cse = 2 * c * (c // 2) + c // 2 + c  # SE with r = 2
    assert n_params(create_attention("cse", c)) == cse
    assert n_params(create_attention("sse", c)) == c + 1  # 1x1 conv C -> 1 with bias
    assert n_params(create_attention("scse", c)) == cse + c + 1


def test_bam_parameter_count():
    c, rd = 64, 4
    channel = c * rd + 2 * rd + rd * c + 2 * c  # fc (no bias, BN) -> fc (no bias) -> BN(C)
    spatial = c * rd + 2 * rd + 2 * (9 * rd * rd + 2 * rd) + rd + 2  # 1x1, two dilated 3x3, 1x1 to one, BNs
    assert n_params(create_attention("bam", c)) == channel + spatial


def test_ge_parameter_counts():
    c = 32
    assert n_params(create_attention("ge_theta_minus", c)) == 0
    assert n_params(create_attention("ge_theta_minus", c, extent=4)) == 0
    for extent in (2, 4, 8):
        dw = int(math.log2(extent)) * (9 * c + 2 * c)  # depthwise 3x3 stride-2 convs + BN
        assert n_params(create_attention("ge_theta", c, extent=extent)) == dw
        rd = c // 16
        assert n_params(create_attention("ge_theta_plus", c, extent=extent)) == dw + 2 * c * rd + rd + c


def test_spa_fca_gsop_coord_sk_parameter_counts():
    c, rd = 32, 2  # C / 16
    assert n_params(create_attention("spa", c)) == 21 * c * rd + rd * c  # pyramid 1 + 4 + 16 bins, bias-free
    assert n_params(create_attention("fca", c)) == 2 * c * rd  # DCT filters are buffers, bottleneck bias-free
    d = 32  # min(128, C)
    assert n_params(create_attention("gsop", c)) == c * d + 2 * d + 2 * d + 4 * d * d + 4 * d + 4 * d * c + c
    for channels in (32, 512):
        m = max(8, channels // 32)
        assert n_params(create_attention("coord", channels)) == channels * m + 2 * m + 2 * (m * channels + channels)
    for groups in (1, 4):
        d = max(c // 16, 32)  # d = max(C / r, L), L = 32
        expected = 2 * (9 * c * c // groups + 2 * c) + c * d + 2 * d + d * 2 * c
        assert n_params(create_attention("sk", c, groups=groups)) == expected


# ---------------------------------------------------------------- numerics against the equations

def test_se_matches_direct_computation():
    torch.manual_seed(0)
    module = create_attention("se", 16, rd_ratio=1 / 4)
    x = rand(3, 16, 5, 7)
    w1, b1 = module.fc[0].weight.flatten(1), module.fc[0].bias  # (4, 16), (4,)
    w2, b2 = module.fc[2].weight.flatten(1), module.fc[2].bias  # (16, 4), (16,)
    z = x.mean((2, 3))  # squeeze: (B, C)
    s = torch.sigmoid(F.relu(z @ w1.T + b1) @ w2.T + b2)  # excite: (B, C)
    y, maps = captured(module, x)
    torch.testing.assert_close(y, x * s[:, :, None, None])
    torch.testing.assert_close(maps[""][0], s[:, :, None, None])


def test_eca_matches_direct_computation():
    torch.manual_seed(0)
    module = create_attention("eca", 16, kernel_size=5)
    x = rand(2, 16, 4, 3)
    taps = module.conv.weight.flatten()  # (5,)
    z = F.pad(x.mean((2, 3)), (2, 2))  # (B, C + 4), zero padding at both ends of the channel axis
    logits = torch.stack([(z[:, c:c + 5] * taps).sum(-1) for c in range(16)], dim=1)  # neighbours c-2 .. c+2
    torch.testing.assert_close(module(x), x * torch.sigmoid(logits)[:, :, None, None])


def test_cbam_matches_direct_computation():
    torch.manual_seed(0)
    module = create_attention("cbam", 16, rd_ratio=1 / 4).eval()
    with torch.no_grad():  # non-trivial running statistics for the spatial BN
        module.spatial.norm.running_mean.fill_(0.3)
        module.spatial.norm.running_var.fill_(2.0)
    x = rand(2, 16, 6, 5)
    mlp = module.channel.fc
    mc = torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))  # (B, C, 1, 1)
    x1 = x * mc
    pooled = torch.cat([x1.mean(1, keepdim=True), x1.amax(1, keepdim=True)], 1)
    conv = F.conv2d(pooled, module.spatial.conv.weight, padding=3)
    bn = module.spatial.norm
    ms = torch.sigmoid((conv - 0.3) / math.sqrt(2.0 + bn.eps) * bn.weight + bn.bias)  # (B, 1, H, W)
    y, maps = captured(module, x)
    torch.testing.assert_close(y, x1 * ms)
    torch.testing.assert_close(maps["channel"][0], mc)
    torch.testing.assert_close(maps["spatial"][0], ms)


def test_scse_combines_both_recalibrations():
    torch.manual_seed(0)
    x = rand(2, 16, 5, 5)
    for combine, op in (("add", torch.add), ("max", torch.maximum)):
        module = create_attention("scse", 16, combine=combine)
        q = torch.sigmoid(module.sse.conv(x))  # (B, 1, H, W)
        torch.testing.assert_close(module(x), op(module.cse(x), x * q))
    with pytest.raises(ValueError, match="combine"):
        create_attention("scse", 16, combine="mul")


def test_ge_theta_minus_gathers_by_pooling():
    x = rand(2, 8, 6, 8)
    torch.testing.assert_close(create_attention("ge_theta_minus", 8)(x),
                               x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
    # extent 2: average over 3x3 windows at stride 2, each value spread back over its 2x2 cell
    module = create_attention("ge_theta_minus", 8, extent=2)
    y, maps = captured(module, x)
    gathered = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # (B, C, 3, 4)
    gate = torch.sigmoid(gathered).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(y, x * gate)
    assert maps[""][0].shape == x.shape


def test_ge_parametric_global_extent_needs_the_feature_size():
    with pytest.raises(ValueError, match="feat_size"):
        create_attention("ge_theta", 8, extent=0)
    module = create_attention("ge_theta", 8, extent=0, feat_size=(4, 6))
    assert n_params(module) == 8 * 24 + 2 * 8
    assert module(rand(2, 8, 4, 6)).shape == (2, 8, 4, 6)
    with pytest.raises(ValueError, match="feat_size"):
        module(rand(2, 8, 5, 6))
    for extent in (1, 3):
        with pytest.raises(ValueError, match="power of two"):
            create_attention("ge_theta", 8, extent=extent)


def test_residual_gates_keep_the_identity_path():
    """BAM and Residual Attention: y = x * (1 + M(x)) with M the recorded map, in (0, 1)."""
    x = rand(2, 16, 6, 5)
    for name in ("bam", "residual_attention"):
        y, maps = captured(create_attention(name, 16), x)
        weights = maps[""][0]
        assert weights.shape == x.shape and ((weights > 0) & (weights < 1)).all()
        torch.testing.assert_close(y, x * (1 + weights))


def test_coordinate_attention_factorises_into_two_directions():
    torch.manual_seed(0)
    module = create_attention("coord", 16)
    x = rand(2, 16, 5, 7)
    y, maps = captured(module, x)
    logits_h, logits_w = module.gate_logits(x)
    assert logits_h.shape == (2, 16, 5, 1) and logits_w.shape == (2, 16, 1, 7)
    weights = maps[""][0]
    torch.testing.assert_close(weights, torch.sigmoid(logits_h) * torch.sigmoid(logits_w))
    torch.testing.assert_close(y, x * weights)
    # the height gate depends on the rows only: permuting the columns of x permutes nothing in it
    perm = torch.randperm(7)
    torch.testing.assert_close(module.gate_logits(x[..., perm])[0], logits_h)


def test_sk_selects_among_branches_with_softmax():
    torch.manual_seed(0)
    module = create_attention("sk", 16, kernel_sizes=(3, 5, 7))
    x = rand(2, 16, 6, 6)
    y, maps = captured(module, x)
    weights = maps[""][0]  # (B, C, M)
    assert weights.shape == (2, 16, 3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 16))
    branches = torch.stack([b(x) for b in module.branches], 1)  # (B, M, C, H, W)
    torch.testing.assert_close(y, (branches * weights.permute(0, 2, 1)[..., None, None]).sum(1))
    assert [b[0].dilation for b in module.branches] == [(1, 1), (2, 2), (3, 3)]  # 3x3, 5x5, 7x7 fields


def test_spa_pools_a_pyramid():
    torch.manual_seed(0)
    module = create_attention("spa", 16, rd_ratio=1 / 4)
    x = rand(2, 16, 8, 8)
    pyramid = torch.cat([x.mean((2, 3)), F.avg_pool2d(x, 4).flatten(1), F.avg_pool2d(x, 2).flatten(1)], 1)
    assert pyramid.shape == (2, 21 * 16)
    torch.testing.assert_close(module(x), x * torch.sigmoid(module.fc(pyramid[:, :, None, None])))


def test_fca_dct_basis_and_lowest_frequency_is_average_pooling():
    for n in (4, 7):
        basis = torch.stack([dct_basis(u, n) for u in range(n)])  # (n, n)
        torch.testing.assert_close(basis @ basis.T, n * torch.eye(n, dtype=basis.dtype))  # orthogonal rows
    torch.manual_seed(0)
    # with only (0, 0) the DCT squeeze is H*W times global average pooling (the paper's Theorem 1)
    module = create_attention("fca", 16, dct_size=5, frequencies=[(0, 0)], rd_ratio=1 / 4)
    x = rand(2, 16, 5, 5)
    logits = module.fc(25 * x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(module(x), x * torch.sigmoid(logits))


def test_fca_assigns_frequency_groups_to_channels():
    module = create_attention("fca", 8, dct_size=7, num_freq=4)
    # 8 channels, 4 frequencies: channel pairs share the top-4 components (0,0), (0,1), (6,0), (0,5)
    expected = [(0, 0), (0, 0), (0, 1), (0, 1), (6, 0), (6, 0), (0, 5), (0, 5)]
    for c, (u, v) in enumerate(expected):
        torch.testing.assert_close(module.dct[c], (dct_basis(u, 7)[:, None] * dct_basis(v, 7)[None, :]).float())
    with pytest.raises(ValueError, match="frequencies"):
        create_attention("fca", 8, dct_size=4, frequencies=[(4, 0)])


def test_gsop_covariance_pooling():
    x = rand(2, 3, 4, 5)
    flat = x.flatten(2)
    expected = torch.stack([torch.cov(f, correction=0) for f in flat])
    torch.testing.assert_close(covariance_pool(x), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert covariance_pool(x).dtype == torch.float32  # second-order statistics stay in float32


@pytest.mark.parametrize("name, map_shape", [
    *[(name, (2, 16, 1, 1)) for name in ("se", "eca", "cbam_channel", "cse", "ge_theta_minus", "ge_theta_plus",
                                         "spa", "fca", "gsop")],
    ("cbam_spatial", (2, 1, 5, 7)), ("sse", (2, 1, 5, 7)), ("ge_theta_minus", (2, 16, 5, 7)),
])
def test_gates_record_the_weights_that_scale_x(name, map_shape):
    """Channel gates record (B, C, 1, 1) weights, spatial gates (B, 1, H, W) maps; y = x * weights."""
    x = rand(2, 16, 5, 7)
    kwargs = dict(extent=2) if map_shape == (2, 16, 5, 7) else {}
    y, maps = captured(create_attention(name, 16, **kwargs), x)
    weights = maps[""][0]
    assert weights.shape == map_shape and ((weights > 0) & (weights < 1)).all()
    torch.testing.assert_close(y, x * weights)


def test_gate_layer_choices():
    x = rand(2, 16, 4, 4)
    y, maps = captured(create_attention("se", 16, gate_layer="hard_sigmoid"), x)
    assert ((maps[""][0] >= 0) & (maps[""][0] <= 1)).all()
    torch.testing.assert_close(y, x * maps[""][0])
    with pytest.raises(ValueError, match="gate_layer"):
        create_attention("se", 16, gate_layer="softplus")
    with pytest.raises(ValueError, match="act_layer"):
        create_attention("cbam", 16, act_layer="nope")


@pytest.mark.parametrize("kwargs, match", [(dict(rd_ratio=0), "rd_ratio"), (dict(rd_channels=0), "rd_channels")])
def test_bad_reduction_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_attention("se", 16, **kwargs)


GATES = ("se", "eca", "cbam", "cbam_channel", "cbam_spatial", "bam", "cse", "sse", "scse", "ge_theta_minus",
         "ge_theta", "ge_theta_plus", "sk", "spa", "fca", "gsop", "coord", "residual_attention")


@pytest.mark.parametrize("channels", [0, -3, 2.5, True])
def test_bad_channels_are_named(channels):
    for name in GATES:
        with pytest.raises(ValueError, match="channels"):
            create_attention(name, channels)
    with pytest.raises(ValueError, match="channels"):
        create_attention("eca", channels, kernel_size=3)
