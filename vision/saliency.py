"""Bottom-up saliency (Itti, Koch and Niebur, 1998): a non-learned attention map of any batch of images.

Itti, Koch and Niebur, 1998, "A Model of Saliency-Based Visual Attention for Rapid Scene Analysis", IEEE
TPAMI 20(11). In torch, batched, on the images' device:

- nine-level Gaussian pyramids (5-tap binomial blur, then subsampling by two; level 0 is the image, scaled so
  that its shorter side is ``base`` pixels and level 8 is about one pixel) of the intensity
  ``I = (r + g + b) / 3``, the broadly tuned colours ``R = r - (g + b) / 2``, ``G = g - (r + b) / 2``,
  ``B = b - (r + g) / 2``, ``Y = (r + g) / 2 - |r - g| / 2 - b`` (r, g, b divided by I where I exceeds a tenth
  of the image's maximum, else 0; negative values set to 0) and the orientations (the magnitude of a
  quadrature pair of Gabor filters at 0, 45, 90 and 135 degrees on each intensity level);
- centre-surround differences ``|F(c) - F(s)|`` (the surround level interpolated to the centre's size) for
  centres c in {2, 3, 4} and surrounds s = c + 3, c + 4: six maps of intensity, twelve of the colour
  opponencies R - G and B - Y (the difference of the opponent signal between centre and surround, the usual
  reading of the paper's eq. 2), twenty-four of orientation;
- the map normalization ``N(.)``: scale to [0, 1], then multiply by ``(1 - m)^2``, m the mean of the map's
  other local maxima (3 x 3 neighbourhoods), which promotes maps with one strong peak and suppresses maps with
  many comparable ones;
- conspicuity maps at level 4 (across-scale sums of normalized maps): intensity, colour
  (``N(RG) + N(BY)``), orientation (``sum_theta N(sum N(O))``), and the saliency map, the mean of their
  normalizations, resized to the image and scaled to [0, 1] per image.

Grey images (one channel) have no colour conspicuity; the saliency map averages the other two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

LEVELS = 9
CENTRES = (2, 3, 4)
DELTAS = (3, 4)
ORIENTATIONS = (0.0, 45.0, 90.0, 135.0)
MAP_LEVEL = 4  # conspicuity and saliency maps live at this pyramid level


def _blur_kernel(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype) / 16
    return k[:, None] * k[None, :]  # (5, 5)


def gaussian_pyramid(x: torch.Tensor, levels: int = LEVELS) -> list[torch.Tensor]:
    """(B, K, H, W) -> ``levels`` maps, level 0 = x, each next level blurred (5 x 5 binomial, reflected
    borders) and subsampled by two (ceil sizes)."""
    kernel = _blur_kernel(x.device, x.dtype).expand(x.shape[1], 1, 5, 5)
    pyramid = [x]
    for _ in range(levels - 1):
        prev = pyramid[-1]
        mode = "reflect" if min(prev.shape[-2:]) > 2 else "replicate"
        blurred = F.conv2d(F.pad(prev, (2, 2, 2, 2), mode=mode), kernel, groups=prev.shape[1])
        pyramid.append(blurred[..., ::2, ::2])
    return pyramid


def gabor_kernels(size: int = 9, sigma: float = 2.0, wavelength: float = 5.0,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """(2 * len(ORIENTATIONS), 1, size, size): an even (cosine, zero mean) and an odd (sine) Gabor filter per
    orientation; theta is the orientation of the bars each pair prefers (0 = horizontal)."""
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    kernels = []
    for theta in ORIENTATIONS:
        t = math.radians(theta)
        across = -xx * math.sin(t) + yy * math.cos(t)  # distance across a bar of orientation theta
        envelope = torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        even = envelope * torch.cos(2 * math.pi * across / wavelength)
        even = even - envelope * (even.sum() / envelope.sum())  # no response to a uniform area
        odd = envelope * torch.sin(2 * math.pi * across / wavelength)
        kernels += [even / even.abs().sum(), odd / odd.abs().sum()]
    return torch.stack(kernels)[:, None].float()


def normalize_maps(maps: torch.Tensor, window: int = 3) -> torch.Tensor:
    """Itti et al.'s N(.) on each map of (B, K, h, w): scale to [0, 1] (a constant map gives zeros), then
    multiply by (1 - m)^2, m the mean of the map's local maxima (``window`` x ``window``) other than the
    global one (0 when there is no other)."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    scaled = (maps - lo) / (hi - lo).clamp_min(1e-12)  # (B, K, h, w) in [0, 1]
    pooled = F.max_pool2d(scaled, window, stride=1, padding=window // 2)
    peaks = (scaled == pooled) & (scaled > 0)
    total = (scaled * peaks).sum(dim=(-2, -1), keepdim=True)
    count = peaks.sum(dim=(-2, -1), keepdim=True)
    top = scaled.amax(dim=(-2, -1), keepdim=True)  # 1, or 0 for a constant map
    others = (total - top) / (count - 1).clamp_min(1)
    others = torch.where(count > 1, others, torch.zeros_like(others))
    return scaled * (top - others) ** 2


def _centre_surround(pyramid: Sequence[torch.Tensor] | dict[int, torch.Tensor], size: tuple[int, int]
                     ) -> torch.Tensor:
    """|F(c) - F(s)| for every (c, s), each normalized by N(.) and summed at ``size``: (B, K, *size)."""
    total = 0
    for c in CENTRES:
        for delta in DELTAS:
            centre = pyramid[c]
            surround = F.interpolate(pyramid[c + delta], size=centre.shape[-2:], mode="bilinear",
                                     align_corners=False)
            diff = normalize_maps((centre - surround).abs())
            total = total + F.interpolate(diff, size=size, mode="bilinear", align_corners=False)
    return total


def _colours(rgb: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> the opponent signals R - G and B - Y, (B, 2, H, W), from intensity-normalized r, g, b."""
    bright = intensity > 0.1 * intensity.amax(dim=(-2, -1), keepdim=True)
    r, g, b = (rgb / intensity.clamp_min(1e-6) * bright).unbind(1)
    red = (r - (g + b) / 2).clamp_min(0)
    green = (g - (r + b) / 2).clamp_min(0)
    blue = (b - (r + g) / 2).clamp_min(0)
    yellow = ((r + g) / 2 - (r - g).abs() / 2 - b).clamp_min(0)
    return torch.stack([red - green, blue - yellow], dim=1)


def conspicuity_maps(images: torch.Tensor, base: int = 256) -> dict[str, torch.Tensor]:
    """The conspicuity maps of images (B, C, H, W), C = 1 or 3, float in [0, 1] or uint8: ``intensity``,
    ``orientation`` and (for colour images) ``colour``, each (B, h, w) at pyramid level 4, each already N(.)-
    normalized as they enter the saliency map.

    Raises:
        ValueError: images that are not (B, 1 or 3, H, W).
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"saliency needs images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    scale = base / min(x.shape[-2:])
    work = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
    x = F.interpolate(x, size=work, mode="bilinear", align_corners=False).clamp(0, 1)
    intensity = x.mean(1, keepdim=True)  # (B, 1, H', W')
    pyramid = gaussian_pyramid(intensity)
    size = tuple(pyramid[MAP_LEVEL].shape[-2:])
    maps = {"intensity": _centre_surround(pyramid, size)[:, 0]}
    if x.shape[1] == 3:
        opponent = _centre_surround(gaussian_pyramid(_colours(x, intensity)), size)  # (B, 2, h, w)
        maps["colour"] = opponent.sum(1)
    kernels = gabor_kernels(device=x.device)
    oriented = {}
    for k in range(min(CENTRES), LEVELS):  # the levels the centre-surround differences read
        level = pyramid[k]
        mode = "reflect" if min(level.shape[-2:]) > 4 else "replicate"
        response = F.conv2d(F.pad(level, (4, 4, 4, 4), mode=mode), kernels)  # (B, 8, h_k, w_k)
        oriented[k] = response.unflatten(1, (len(ORIENTATIONS), 2)).square().sum(2).sqrt()  # (B, 4, h_k, w_k)
    maps["orientation"] = normalize_maps(_centre_surround(oriented, size)).sum(1)
    return {name: normalize_maps(m[:, None])[:, 0] for name, m in maps.items()}


@torch.no_grad()
def itti_koch_saliency(images: torch.Tensor, base: int = 256) -> torch.Tensor:
    """The saliency map of Itti, Koch and Niebur (1998) of images (B, C, H, W) (C = 1 or 3; float in [0, 1]
    or uint8): (B, H, W), each map scaled to [0, 1]. ``base``: the shorter side the images are resized to
    before the nine-level pyramid (256 gives a 1-pixel top level). Raises ``ValueError`` as
    :func:`conspicuity_maps`."""
    maps = conspicuity_maps(images, base)
    saliency = torch.stack(list(maps.values())).mean(0)  # (B, h, w)
    saliency = F.interpolate(saliency[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo = saliency.amin(dim=(-2, -1), keepdim=True)
    hi = saliency.amax(dim=(-2, -1), keepdim=True)
    return (saliency - lo) / (hi - lo).clamp_min(1e-12)
