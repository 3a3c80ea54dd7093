"""Attention maps of a trained vision model, overlaid on its input images (``attention_maps.png`` of
``vision compare``, beside the non-learned Itti-Koch saliency map of ``vision.saliency``).

Each module's recorded weights (from ``capture_attention``) are turned into one spatial map per image where
they have a spatial extent; channel-only modules are shown by the channel mean of their output magnitude.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import capture_attention


def _spatial(weights: torch.Tensor, batch: int, channels: int, h: int, w: int) -> torch.Tensor | None:
    """A recorded attention map as a (B, H, W) spatial map, or None when it has no spatial extent.

    Spatial maps (..., H, W) are averaged over their other dimensions; weights whose keys are the positions
    (..., HW), such as affinities (B, HW, HW) or GC's context weights (B, 1, HW), give the mean attention
    each position receives. Channel weights and channel affinities have no spatial map.
    """
    if weights.shape[0] != batch:
        if weights.shape[0] % batch:
            return None
        weights = weights.reshape(batch, -1, *weights.shape[1:])  # (B, heads, ...)
    weights = weights.float()
    if h * w > 1 and weights.dim() >= 3 and tuple(weights.shape[-2:]) == (h, w):
        return weights.reshape(batch, -1, h, w).mean(1)
    hw = h * w
    if hw > 1 and weights.dim() >= 2 and weights.shape[-1] == hw and hw != channels:
        return weights.reshape(batch, -1, hw).mean(1).reshape(batch, h, w)
    return None


@torch.no_grad()
def attention_heatmaps(model: nn.Module, x: torch.Tensor, min_size: int = 7) -> tuple[torch.Tensor, str] | None:
    """(B, H_img, W_img) heatmaps in [0, 1] from the deepest attention module whose feature map is at least
    ``min_size`` a side (else the first one), and a note on what is shown; None without attention modules.

    The module's recorded maps are used where they are spatial; for channel-only modules the figure shows the
    channel mean of the module's output magnitude instead (noted as such). A ViT shows the class token's
    attention rollout over the patches (Abnar & Zuidema, 2020).
    """
    if hasattr(model, "rollout"):  # ViT: the class token's attention rollout over the patches
        _, heat = model.rollout(x)  # (B, h, w)
        note = f"rollout at {heat.shape[-2]}x{heat.shape[-1]}"
        heat = F.interpolate(heat[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return _scaled(heat), note
    modules = model.attention_modules() if hasattr(model, "attention_modules") else []
    if not modules:
        return None
    seen: dict[int, tuple[tuple[int, ...], torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(id(mod), (tuple(inp[0].shape), out)))
             for m in modules]
    model.eval()
    try:
        with capture_attention(model) as maps:
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    big = [m for m in modules if min(seen[id(m)][0][-2:]) >= min_size]
    chosen = big[-1] if big else modules[0]
    names = {id(m): n for n, m in model.named_modules()}
    prefix = names[id(chosen)]
    (b, c, h, w), out = seen[id(chosen)]
    spatial = [s for name, calls in maps.items() if name == prefix or name.startswith(prefix + ".")
               for weights in calls if (s := _spatial(weights, b, c, h, w)) is not None]
    if spatial:
        heat, note = torch.stack(spatial).mean(0), f"map at {h}x{w}"
    else:
        heat, note = out.float().abs().mean(1), f"|output| {h}x{w} (no spatial map)"
    heat = F.interpolate(heat[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _scaled(heat), note


def _scaled(heat: torch.Tensor) -> torch.Tensor:
    """(B, H, W) maps, each scaled to [0, 1]."""
    lo = heat.amin(dim=(1, 2), keepdim=True)
    hi = heat.amax(dim=(1, 2), keepdim=True)
    return (heat - lo) / (hi - lo).clamp_min(1e-12)


def plot_attention_maps(images: torch.Tensor, heatmaps: dict[str, tuple[torch.Tensor, str]], path: Path,
                        groups_per_row: int = 3) -> None:
    """One panel group per module (the input images first, then the Itti-Koch saliency map, the bottom-up map
    every learned one can be compared with): its map overlaid on the same images.

    Groups are laid out ``groups_per_row`` to a row so that many modules still give a readable figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .saliency import itti_koch_saliency

    n = images.shape[0]
    bottom_up = (itti_koch_saliency(images), "bottom-up, not learned")
    entries: list[tuple[str, tuple[torch.Tensor, str] | None]] = [("input", None), ("Itti-Koch", bottom_up),
                                                                   *heatmaps.items()]
    per_row = max(1, min(groups_per_row, len(entries)))
    rows = math.ceil(len(entries) / per_row)
    fig, axes = plt.subplots(rows, per_row * n, figsize=(1.0 * per_row * n, 1.25 * rows), squeeze=False)
    shown = images.float().permute(0, 2, 3, 1).numpy() / 255.0  # (N, H, W, C)
    gray = shown.shape[-1] == 1
    for ax in axes.flat:
        ax.axis("off")
    for k, (label, entry) in enumerate(entries):
        r, c0 = divmod(k, per_row)
        for i in range(n):
            ax = axes[r][c0 * n + i]
            ax.imshow(shown[i, ..., 0] if gray else shown[i], cmap="gray" if gray else None, vmin=0, vmax=1)
            if entry is not None:
                ax.imshow(entry[0][i].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        title = label if entry is None else f"{label}: {entry[1]}"
        axes[r][c0 * n].set_title(title, fontsize=7, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.3 / rows, bottom=0.01, wspace=0.04, hspace=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)

