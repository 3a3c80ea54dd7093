"""RGA-S / RGA-C (Zhang et al., 2020): parameter counts against the paper's formulas, the relation vector's
layout against a loop over the nodes, shapes at and away from the built size, capture. The registry's
contract tests (tests/test_vision_modules.py) cover rga_s, rga_c and rga as every registered module."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.attention import capture_attention
from vision import create_attention, list_attention
from vision.attention.rga import RGA, ChannelRGA, SpatialRGA


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_follow_the_papers_formulas():
    # C = 32 channels, a 16 x 8 map (N = 128), s1 = 4 (rd_ratio 1/4), s2 = 3 (gate_rd_ratio 1/3).
    # RGA-S: c = C/s1 = 8, n = N/s1 = 32, d = (1 + n)/s2 = 11
    #   theta, phi, psi: 3 (C c + 2 c) = 3 (256 + 16) = 816;   rho: 2 N n + 2 n = 8192 + 64 = 8256
    #   W1: (1 + n) d + 2 d = 363 + 22 = 385;   W2: d + 2 = 13                       -> 9470
    spatial = SpatialRGA(32, [16, 8], rd_ratio=1 / 4, gate_rd_ratio=1 / 3)
    assert count(spatial) == 816 + 8256 + 385 + 13 == 9470
    # RGA-C: nodes are the C = 32 channels of dimension N = 128: n = N/s1 = 32, c = C/s1 = 8, d' = (1 + c)/s2 = 3
    #   theta, phi, psi: 3 (N n + 2 n) = 3 (4096 + 64) = 12480;   rho: 2 C c + 2 c = 512 + 16 = 528
    #   W1: (1 + c) d' + 2 d' = 27 + 6 = 33;   W2: d' + 2 = 5                       -> 13046
    channel = ChannelRGA(32, [16, 8], rd_ratio=1 / 4, gate_rd_ratio=1 / 3)
    assert count(channel) == 12480 + 528 + 33 + 5 == 13046
    both = create_attention("rga", 32, spatial_size=[16, 8], rd_ratio=1 / 4, gate_rd_ratio=1 / 3)
    assert isinstance(both, RGA) and count(both) == 9470 + 13046


def test_relation_vectors_are_each_nodes_row_and_column():
    """RGA-S's logits equal a loop over the nodes: r_i = [r_i1..r_iN, r_1i..r_Ni] with r_ij = theta(x_i).phi(x_j),
    beside mean_c(psi(x_i)), through rho and W."""
    torch.manual_seed(0)
    module = SpatialRGA(6, [2, 3], rd_ratio=1 / 2, gate_rd_ratio=1 / 2).eval()
    x = torch.randn(1, 6, 2, 3)
    with torch.no_grad():
        nodes = x.flatten(2).unsqueeze(-1)  # (1, 6, N = 6, 1)
        q = module.theta(nodes)[0, :, :, 0]  # (3, N)
        k = module.phi(nodes)[0, :, :, 0]
        n = q.shape[1]
        rows = []
        for i in range(n):
            rel = [float(q[:, i] @ k[:, j]) for j in range(n)] + [float(q[:, j] @ k[:, i]) for j in range(n)]
            rows.append(rel)
        relations = torch.tensor(rows).T[None, :, :, None]  # (1, 2N, N, 1): node i's vector in column i
        own = module.psi(nodes).mean(1, keepdim=True)
        expected = module.w(torch.cat([own, module.rho(relations)], 1)).reshape(1, 1, 2, 3)
        torch.testing.assert_close(module.gate_logits(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 8), (16, 12), (3, 5)])
def test_maps_have_the_inputs_size_and_are_captured(size):
    model = torch.nn.Sequential(create_attention("rga", 16, spatial_size=8)).eval()
    x = torch.randn(2, 16, *size)
    with torch.no_grad(), capture_attention(model) as maps:
        y = model(x)
    assert y.shape == x.shape
    assert sorted(maps) == ["0.channel", "0.spatial"]
    assert maps["0.spatial"][0].shape == (2, 1, *size) and maps["0.channel"][0].shape == (2, 16, 1, 1)
    for calls in maps.values():
        assert ((calls[0] > 0) & (calls[0] < 1)).all()


def test_registered_with_the_registry_convention_and_clear_errors():
    assert {"rga_s", "rga_c", "rga"} <= set(list_attention())
    with pytest.raises(ValueError, match="spatial_size must be a positive int or \\[H, W\\]"):
        create_attention("rga_s", 16, spatial_size=[8, 0])
    with pytest.raises(ValueError, match="takes no argument 'reduction'"):
        create_attention("rga_c", 16, reduction=8)
    with pytest.raises(ValueError, match="channels must be a positive int"):
        create_attention("rga_s", 0)


def test_gradients_reach_every_parameter_in_a_resnet():
    from vision.models import build_resnet

    torch.manual_seed(0)
    model = build_resnet("small", widths=[8, 16], attention="rga", attention_position="stage",
                         attention_kwargs={"spatial_size": [4, 4], "rd_ratio": 0.5})
    x = torch.randn(3, 3, 8, 8)
    model(x).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        if ".spatial." in name or ".channel." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
