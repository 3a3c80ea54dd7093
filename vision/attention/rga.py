"""Relation-aware global attention: spatial (RGA-S), channel (RGA-C) and both in sequence (RGA-SC).

Zhang, Lan, Zeng, Jin and Chen, 2020, "Relation-Aware Global Attention for Person Re-identification", CVPR,
arXiv:1904.02998, section 3.2. The feature map is a graph of N nodes: the H x W positions (RGA-S, each a
C-dimensional feature) or the C channels (RGA-C, each an N = H x W dimensional feature map). For node i:

- pairwise relations ``r_ij = theta(x_i)^T phi(x_j)`` (the core's ``DotScore`` of two embeddings, 1x1 conv + BN +
  ReLU each, width reduced by s1), giving the relation vector ``r_i = [R(i, :), R(:, i)]`` (2 N' entries,
  N' = the number of nodes);
- the relation-aware feature ``y_i = [mean_c(psi(x_i)), rho(r_i)]``: the node's own feature embedded (psi,
  reduced by s1, then averaged over its channels to one value) beside its embedded relation vector (rho:
  2 N' -> N' / s1, the reduction of the authors' code);
- the attention ``a_i = sigmoid(W2 ReLU(W1 y_i))``, W1: 1 + N'/s1 -> (1 + N'/s1) / s2 and W2: -> 1, each a 1x1
  convolution followed by BN; all convolutions without bias (the BN follows), as in the authors' code.

Parameters (weights and BN affine terms) with C channels, N = H x W, c = C s1, n = N s1 (s1 = ``rd_ratio``),
d = (1 + n) s2 (s2 = ``gate_rd_ratio``), see ``tests/test_vision_rga.py``::

    RGA-S: 3 (C c + 2 c) + (2 N n + 2 n) + ((1 + n) d + 2 d) + (d + 2)
    RGA-C: 3 (N n + 2 n) + (2 C c + 2 c) + ((1 + c) d' + 2 d') + (d' + 2),   d' = (1 + c) s2

The relation vector has one entry per node, so a module is built for one feature-map size (``spatial_size``,
the paper's fixed ``in_spatial``). An input of another size (this toolkit puts modules at any depth and tests
them on any size) is resampled to the built size for the attention (adaptive average pooling down, bilinear up)
and a spatial map is resampled back; at the built size the module is exactly the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import DotScore

from ..gate import GateAttention, check_channels, conv_norm_act, reduced_channels
from ..registry import register_attention


def _size(spatial_size: int | Sequence[int]) -> tuple[int, int]:
    size = (spatial_size, spatial_size) if isinstance(spatial_size, int) else tuple(spatial_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"spatial_size must be a positive int or [H, W], got {spatial_size!r}")
    return size  # type: ignore[return-value]


def resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size): unchanged at that size, adaptive average pooling when no side grows,
    bilinear interpolation otherwise."""
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RelationGate(GateAttention):
    """The relation-aware attention over N' nodes of dimension D (shared by RGA-S and RGA-C).

    ``nodes(x)`` arranges the input as a (B, D, N', 1) map (node features on the channel axis, nodes on the
    first spatial axis); :meth:`node_logits` returns the attention logits (B, 1, N', 1).
    """

    def __init__(self, node_dim: int, num_nodes: int, rd_ratio: float, gate_rd_ratio: float,
                 gate_layer: str | nn.Module) -> None:
        super().__init__(gate_layer)
        dim = reduced_channels(node_dim, rd_ratio)  # embedded node feature width (C / s1 or N / s1)
        rel = reduced_channels(num_nodes, rd_ratio)  # embedded relation width (N' / s1)
        hidden = reduced_channels(1 + rel, gate_rd_ratio)
        self.theta = conv_norm_act(node_dim, dim, 1)
        self.phi = conv_norm_act(node_dim, dim, 1)
        self.psi = conv_norm_act(node_dim, dim, 1)
        self.rho = conv_norm_act(2 * num_nodes, rel, 1)
        self.relation = DotScore()
        self.w = nn.Sequential(conv_norm_act(1 + rel, hidden, 1),
                               nn.Conv2d(hidden, 1, 1, bias=False), nn.BatchNorm2d(1))

    def node_logits(self, nodes: torch.Tensor) -> torch.Tensor:
        """Node features (B, D, N', 1) -> attention logits (B, 1, N', 1)."""
        q = self.theta(nodes).flatten(2).transpose(1, 2)  # (B, N', D/s1)
        k = self.phi(nodes).flatten(2).transpose(1, 2)  # (B, N', D/s1)
        r = self.relation(q, k)  # (B, N', N'): r_ij
        relations = torch.cat([r, r.transpose(1, 2)], dim=2)  # (B, N', 2N'): [R(i, :), R(:, i)] per node i
        relations = relations.transpose(1, 2).unsqueeze(-1)  # (B, 2N', N', 1)
        own = self.psi(nodes).mean(1, keepdim=True)  # (B, 1, N', 1)
        y = torch.cat([own, self.rho(relations)], dim=1)  # (B, 1 + N'/s1, N', 1)
        return self.w(y)  # (B, 1, N', 1)


@register_attention("rga_s")
class SpatialRGA(RelationGate):
    """RGA-S: the H x W positions are the nodes; recorded map: (B, 1, H, W) (the input's size).

    Args:
        channels: C; spatial_size: H x W the module is built for (int or [H, W]; other sizes are resampled);
        rd_ratio: 1 / s1 of the embeddings; gate_rd_ratio: 1 / s2 of W1; gate_layer: a core gate normalizer.
    """

    def __init__(self, channels: int, spatial_size: int | Sequence[int] = 8, rd_ratio: float = 1 / 8,
                 gate_rd_ratio: float = 1 / 8, gate_layer: str | nn.Module = "sigmoid") -> None:
        self.size = _size(spatial_size)
        super().__init__(check_channels(channels), self.size[0] * self.size[1], rd_ratio, gate_rd_ratio, gate_layer)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        z = resample(x, self.size)  # (B, C, h, w): the built size
        logits = self.node_logits(z.flatten(2).unsqueeze(-1))  # (B, 1, h * w, 1)
        return resample(logits.reshape(-1, 1, *self.size), tuple(x.shape[-2:]))  # (B, 1, H, W)


@register_attention("rga_c")
class ChannelRGA(RelationGate):
    """RGA-C: the C channels are the nodes, each an H x W map; recorded map: (B, C, 1, 1).

    Args: as :class:`SpatialRGA`.
    """

    def __init__(self, channels: int, spatial_size: int | Sequence[int] = 8, rd_ratio: float = 1 / 8,
                 gate_rd_ratio: float = 1 / 8, gate_layer: str | nn.Module = "sigmoid") -> None:
        self.size = _size(spatial_size)
        super().__init__(self.size[0] * self.size[1], check_channels(channels), rd_ratio, gate_rd_ratio, gate_layer)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        z = resample(x, self.size)  # (B, C, h, w)
        nodes = z.flatten(2).transpose(1, 2).unsqueeze(-1)  # (B, h * w, C, 1): channel maps as node features
        return self.node_logits(nodes).transpose(1, 2)  # (B, C, 1, 1)


@register_attention("rga")
class RGA(nn.Module):
    """RGA-SC, the paper's best arrangement: RGA-S then RGA-C in sequence; each records its own map
    (``spatial``: (B, 1, H, W), ``channel``: (B, C, 1, 1)). Args: as :class:`SpatialRGA`."""

    def __init__(self, channels: int, spatial_size: int | Sequence[int] = 8, rd_ratio: float = 1 / 8,
                 gate_rd_ratio: float = 1 / 8, gate_layer: str | nn.Module = "sigmoid") -> None:
        super().__init__()
        self.spatial = SpatialRGA(channels, spatial_size, rd_ratio, gate_rd_ratio, gate_layer)
        self.channel = ChannelRGA(channels, spatial_size, rd_ratio, gate_rd_ratio, gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel(self.spatial(x))
