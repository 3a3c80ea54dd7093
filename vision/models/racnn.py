"""Recurrent attention convolutional neural network (RA-CNN; Fu, Zheng, Mei, 2017, "Look Closer to See Better:
Recurrent Attention Convolutional Neural Network for Fine-grained Image Recognition", CVPR).

``S`` scales, each a small CNN (:class:`ScaleCNN`: conv 3×3 - BN - ReLU - 2×2 max-pool per width, global
average pool, a linear classifier). Between scale ``s`` and ``s + 1`` an attention proposal network
(:class:`ProposalNetwork`, APN: two FC layers on scale ``s``'s last feature map) predicts a square region,
centre ``(t_x, t_y)`` and half-side ``t_l``; the region of scale ``s``'s input is cut out with the paper's
differentiable boxcar mask (:func:`boxcar_mask`, section 3.2):

    M(x, y) = [h(x - t_x(tl)) - h(x - t_x(br))] · [h(y - t_y(tl)) - h(y - t_y(br))],  h(z) = 1 / (1 + exp(-k z))

``X_att = X ⊙ M``, and zoomed to ``zoom`` × ``zoom`` pixels by bilinear interpolation (:func:`crop_and_zoom`;
as in the paper the gradient reaches the APN through the mask, the interpolation's coordinates are
constants). The final prediction is a linear layer on the concatenated, L2-normalized pooled features of all
scales (the paper's multi-scale fusion).

Losses (section 3.3): a classification loss at every scale (cross-entropy; the task adds the fused one) and the
inter-scale pairwise ranking loss ``L_rank = max(0, p_t^(s) - p_t^(s+1) + margin)`` (:func:`ranking_loss`),
``p_t^(s)`` the probability of the true class at scale ``s``. Training alternates (section 3.4): with the APNs
fixed, the CNNs and the fusion layer learn from the classification losses ("cnn" phase); with the CNNs fixed,
the APNs learn from the ranking loss ("apn" phase). Here the phase is chosen by a step counter kept in the
model (a buffer, so it is saved and resumed with the weights): ``warmup`` steps of "cnn" (the paper pre-trains
the CNNs), then ``alternate_every`` steps of each, starting with "apn". Fixing a part means its parameters
receive no gradient at all (``None``): the APN's output is detached in the "cnn" phase, and in the "apn"
phase the CNNs run with detached parameters (``torch.func.functional_call``) and the fused logits are
detached. The loss terms reach the Trainer through :meth:`RecurrentAttentionCNN.auxiliary_loss`, which
``VisionTask.loss`` adds (like RAM's REINFORCE term).

The regions of each pass are recorded (``capture_attention``) as one (B, S - 1, 3) tensor of ``(t_x, t_y,
t_l)`` in the coordinates of the original image (``F.grid_sample``'s [-1, 1]), for :func:`plot_regions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from seq2seq_attn.attention import RecordsAttention
from seq2seq_attn.plotting import save_figure

from ..glimpse import frame_image_axis, pixel_centre


def boxcar_mask(boxes: torch.Tensor, height: int, width: int, k: float) -> torch.Tensor:
    """The boxcar mask M (B, H, W) of square regions ``boxes`` (B, 3) = ``(t_x, t_y, t_l)`` in [-1, 1] units
    (centre and half-side; ``F.grid_sample``'s convention, so the region spans ``t_l * W / 2`` pixels each
    side of the centre horizontally and ``t_l * H / 2`` vertically). Pixel ``j``'s centre is at ``j + 0.5``
    pixels; ``k`` is the steepness of the logistic ``h`` in 1/pixels (the paper: 10)."""
    cx, cy = (boxes[:, 0] + 1) * width / 2, (boxes[:, 1] + 1) * height / 2  # pixels from the top-left corner
    lx, ly = boxes[:, 2] * width / 2, boxes[:, 2] * height / 2
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5
    ys = torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5
    mx = torch.sigmoid(k * (xs - (cx - lx)[:, None])) - torch.sigmoid(k * (xs - (cx + lx)[:, None]))  # (B, W)
    my = torch.sigmoid(k * (ys - (cy - ly)[:, None])) - torch.sigmoid(k * (ys - (cy + ly)[:, None]))  # (B, H)
    return my[:, :, None] * mx[:, None, :]  # (B, H, W)


def crop_and_zoom(images: torch.Tensor, boxes: torch.Tensor, size: int, k: float) -> torch.Tensor:
    """``X_att = X ⊙ M`` (:func:`boxcar_mask`) zoomed to ``size`` × ``size``: images (B, C, H, W), boxes (B, 3)
    -> (B, C, size, size), bilinear, zeros outside the image. Gradients reach ``boxes`` through the mask."""
    b, c, h, w = images.shape
    attended = images * boxcar_mask(boxes.float(), h, w, k).to(images.dtype)[:, None]
    fixed = boxes.detach().float()
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = fixed[:, 2]
    theta[:, 1, 1] = fixed[:, 2]
    theta[:, :, 2] = fixed[:, :2]
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(attended.float(), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).to(images.dtype)


def ranking_loss(scale_logits: Sequence[torch.Tensor], labels: torch.Tensor, margin: float) -> torch.Tensor:
    """``sum_s sum_i max(0, p_t^(s) - p_t^(s+1) + margin)`` over the scales' logits (each (B, classes)) and the
    images: a finer scale must be more confident of the true class than the coarser one by ``margin``."""
    probs = [torch.softmax(lg.float(), -1).gather(1, labels[:, None]).squeeze(1) for lg in scale_logits]  # (B,)
    return sum((F.relu(p - q + margin).sum() for p, q in zip(probs[:-1], probs[1:])), torch.zeros(()).to(probs[0]))


def conv_pool_stack(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """conv 3×3 (no bias) - BN - ReLU - 2×2 max-pool (ceil) per width: (B, C, H, W) -> (B, widths[-1], ⌈H/2^k⌉,
    ⌈W/2^k⌉) for k = len(widths). The small CNN of RA-CNN's scales and of the clip network's frames."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2, ceil_mode=True)]
        in_channels = w
    return nn.Sequential(*layers)


class ScaleCNN(nn.Module):
    """One scale's network: :func:`conv_pool_stack`, then global average pooling and a linear classifier.
    ``forward(x (B, C, H, W)) -> (feature map (B, C', h, w), pooled (B, C'), logits)``."""

    def __init__(self, in_channels: int, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.features = conv_pool_stack(in_channels, widths)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fmap = self.features(x)
        pooled = fmap.mean((2, 3))
        return fmap, pooled, self.classifier(pooled)


class ProposalNetwork(nn.Module):
    """APN: feature map (B, C, h, w) -> adaptive average pool to ``pool``² - FC - tanh - FC(3) -> the square
    ``(t_x, t_y, t_l)``: ``t_x, t_y = tanh(.)`` and ``t_l`` in ``[min_half, max_half]`` through a sigmoid. The last
    layer starts at zero weights with the bias of the centred square of half-side ``init_half``."""

    def __init__(self, channels: int, hidden: int, pool: int, min_half: float, max_half: float,
                 init_half: float) -> None:
        super().__init__()
        if not 0 < min_half < init_half < max_half:
            raise ValueError(f"need 0 < min_half < init_half < max_half, got {min_half}, {init_half}, {max_half}")
        self.min_half, self.max_half = min_half, max_half
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(channels * pool * pool, hidden),
                                 nn.Tanh(), nn.Linear(hidden, 3))
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        frac = (init_half - min_half) / (max_half - min_half)
        with torch.no_grad():
            last.bias.copy_(torch.tensor([0.0, 0.0, math.log(frac / (1 - frac))]))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        raw = self.net(fmap).float()  # (B, 3)
        half = self.min_half + (self.max_half - self.min_half) * torch.sigmoid(raw[:, 2:])
        return torch.cat([torch.tanh(raw[:, :2]), half], 1)  # (B, 3)


class RecurrentAttentionCNN(RecordsAttention):
    """RA-CNN (see the module doc): images (B, C, H, W) -> fused logits (B, num_classes).

    Args:
        num_classes, in_channels: classes and image channels.
        scales: S >= 2 scales; widths: the conv widths of every scale's CNN; zoom: side in pixels of the zoomed
            regions (scales 2..S); k: the boxcar mask's steepness (1/pixels); margin: the ranking loss's margin;
        apn_hidden, apn_pool: the APN's FC width and pooling grid; min_half, max_half, init_half: the APN's
            half-side range and initial value ([-1, 1] units of its scale's input);
        warmup, alternate_every: the training schedule in steps (see the module doc).

    Raises:
        ValueError: ``scales < 2``, empty or non-positive sizes, or a bad half-side range.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, scales: int = 3, widths: Sequence[int] = (16, 32, 64),
                 zoom: int = 32, k: float = 10.0, margin: float = 0.05, apn_hidden: int = 64, apn_pool: int = 4,
                 min_half: float = 0.25, max_half: float = 0.75, init_half: float = 0.5, warmup: int = 0,
                 alternate_every: int = 1) -> None:
        super().__init__()
        if scales < 2 or not widths or min(widths) < 1 or min(zoom, apn_hidden, apn_pool, alternate_every) < 1:
            raise ValueError("scales must be >= 2, widths non-empty and positive, zoom, apn_hidden, apn_pool and "
                             "alternate_every >= 1")
        if warmup < 0 or not k > 0 or margin < 0:
            raise ValueError(f"need warmup >= 0, k > 0 and margin >= 0, got {warmup}, {k}, {margin}")
        self.cnns = nn.ModuleList(ScaleCNN(in_channels, widths, num_classes) for _ in range(scales))
        self.apns = nn.ModuleList(ProposalNetwork(widths[-1], apn_hidden, apn_pool, min_half, max_half, init_half)
                                  for _ in range(scales - 1))
        self.fusion = nn.Linear(scales * widths[-1], num_classes)
        self.zoom, self.k, self.margin = zoom, float(k), float(margin)
        self.warmup, self.alternate_every = warmup, alternate_every
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training forward passes so far
        self._pending: tuple[str, list[torch.Tensor]] | None = None

    def phase(self) -> str:
        """"cnn" or "apn": what the next training step trains (from the step counter)."""
        n = int(self.steps)
        if n < self.warmup:
            return "cnn"
        return "apn" if ((n - self.warmup) // self.alternate_every) % 2 == 0 else "cnn"

    def _run_cnn(self, s: int, x: torch.Tensor, frozen: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cnn = self.cnns[s]
        if not frozen:
            return cnn(x)
        return functional_call(cnn, {n: p.detach() for n, p in cnn.named_parameters()}, (x,))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        phase = self.phase() if self.training else None
        x, pooled, logits, regions = images, [], [], []
        centre = images.new_zeros(images.shape[0], 2, dtype=torch.float32)
        half = images.new_ones(images.shape[0], 1, dtype=torch.float32)
        for s, _ in enumerate(self.cnns):
            fmap, feat, lg = self._run_cnn(s, x, frozen=phase == "apn")
            pooled.append(F.normalize(feat, dim=1))
            logits.append(lg)
            if s == len(self.apns):
                break
            box = self.apns[s](fmap)  # (B, 3) in scale s's input coordinates
            if phase == "cnn":
                box = box.detach()
            centre, half = centre + half * box[:, :2].detach(), half * box[:, 2:].detach()
            regions.append(torch.cat([centre, half], 1))  # (B, 3) in the original image's coordinates
            x = crop_and_zoom(x, box, self.zoom, self.k)
        self.record(torch.stack(regions, 1))  # (B, S - 1, 3)
        fused = self.fusion(torch.cat(pooled, 1))  # (B, num_classes)
        if phase is not None:
            self.steps += 1
            self._pending = (phase, logits)
            if phase == "apn":
                fused = fused.detach()  # the fusion layer learns in the "cnn" phase only
        return fused

    def regions_as_masks(self, regions: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Recorded ``regions`` (B, S - 1, 3) -> their boxcar masks (B, S - 1, height, width) on the original
        image, with this model's steepness ``k`` (for drawing; values in [0, 1])."""
        b, n, _ = regions.shape
        masks = boxcar_mask(regions.reshape(b * n, 3).float(), height, width, self.k)
        return masks.reshape(b, n, height, width)

    def auxiliary_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict] | None:
        """After a training forward pass: the summed cross-entropy of every scale ("cnn" phase) or the ranking
        loss (:func:`ranking_loss`, "apn" phase), summed over the images, with logs; ``None`` otherwise.
        Clears what the pass kept."""
        if self._pending is None:
            return None
        phase, scale_logits = self._pending
        self._pending = None
        rank = ranking_loss(scale_logits, labels, self.margin)
        logs = {"rank": float(rank.detach()) / max(len(labels), 1), "apn_phase": float(phase == "apn")}
        if phase == "apn":
            return rank, logs
        cls = sum(F.cross_entropy(lg.float(), labels, reduction="sum") for lg in scale_logits)
        return cls, logs


def plot_regions(images: torch.Tensor, regions: torch.Tensor, path: str | Path, labels: list[str] | None = None
                 ) -> Path:
    """Draw each image (B, 1 or 3, H, W) in [0, 1] with the squares RA-CNN zoomed into, ``regions`` (B, S - 1, 3)
    ``(t_x, t_y, t_l)`` in the image's [-1, 1] coordinates (as recorded), scale 2 in red, scale 3 in yellow, ...
    ``labels``: a title per image. Written as a PNG to ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    b, c, h, w = images.shape
    regions = regions.float().cpu()
    centres = pixel_centre(regions[..., :2], h, w)  # (B, S - 1, 2) pixels
    colours = ["tab:red", "yellow", "tab:cyan", "tab:green"]
    fig, axes = plt.subplots(1, b, figsize=(2.4 * b, 2.6), squeeze=False)
    for n, ax in enumerate(axes[0]):
        img = images[n].float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
        ax.imshow(img[..., 0] if c == 1 else img, cmap="gray", vmin=0, vmax=1)
        for s in range(regions.shape[1]):
            half_w, half_h = float(regions[n, s, 2]) * w / 2, float(regions[n, s, 2]) * h / 2
            x, y = centres[n, s].tolist()
            ax.add_patch(Rectangle((x - half_w, y - half_h), 2 * half_w, 2 * half_h, fill=False,
                                   ec=colours[s % len(colours)], lw=1.2))
        frame_image_axis(ax, h, w, None if labels is None else labels[n])
    return save_figure(fig, path)
