"""The vision view's data: each input image with the attention of every module of the run's ResNet, per
stage, captured with ``capture_attention`` (a ViT: each layer's class-token weights and the attention
rollout), and Grad-CAM (Selvaraju et al., 2017, through captum's
``LayerGradCam`` on the last stage) of the predicted class beside them.

Each recorded map is shown by what its axes are (:func:`describe`): spatial gates (CBAM spatial, sSE, BAM,
Coordinate, Residual Attention; GC's context weights) as overlays; channel gates (SE, ECA, CBAM channel, GE, ...) and
DA-Net's channel affinity as bars; self-attention over positions (Non-local, SAGAN, DA-Net PAM, criss-cross,
ANL, OCR, A2) as a query picker: the chosen position's weights over the keys, drawn on the image when the keys
are positions and as bars when they are pooled or region keys.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..attention import capture_attention
from .page import quantize, rounded

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_QUERY_SIDE = 16  # self-attention: at most 16 x 16 query positions are stored (a strided subset)


def image_paths(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (sorted, by suffix) in the named folders."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: input image or folder not found")
    if not paths:
        raise ValueError(f"--input {' '.join(map(str, inputs))}: no images found")
    return paths


def load_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """An image file as uint8 (C, H, W) in the run's shape (grey or RGB, resized bilinearly)."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e
    arr = np.asarray(img, dtype=np.uint8).reshape(h, w, c)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def png_base64(image: torch.Tensor) -> str:
    """uint8 (C, H, W) -> base64 PNG."""
    from PIL import Image

    arr = image.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _normalized(a: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / max(hi - lo, 1e-12), lo, hi


def _self_entry(rows: np.ndarray, h: int, w: int, note: str) -> dict:
    """(H*W, K) weights of every query position -> a query-picker entry (strided queries, rows scaled to 1)."""
    stride = max(1, math.ceil(max(h, w) / MAX_QUERY_SIDE))
    qi = np.arange(0, h, stride)[:, None] * w + np.arange(0, w, stride)[None, :]  # (qh, qw) query indices
    rows = rows[qi.ravel()]
    scaled = rows / np.maximum(rows.max(1, keepdims=True), 1e-12)
    k = rows.shape[1]
    grid = next(((kh, kw) for kh, kw in ((h, w), (-(-h // 2), -(-w // 2))) if kh * kw == k), None)
    return {"kind": "self", "qh": qi.shape[0], "qw": qi.shape[1], "stride": stride, "k": k,
            "kh": grid[0] if grid else None, "kw": grid[1] if grid else None,
            "data": quantize(scaled), "note": note + ("" if grid else f"; {k} pooled or region keys (bars)")}


def _bars(values: np.ndarray, note: str) -> dict:
    """(C,) non-negative values -> a bar entry scaled to the largest."""
    top = max(float(values.max()), 1e-12)
    return {"kind": "channel", "c": len(values), "max": rounded([top])[0], "data": quantize(values / top), "note": note}


def _spatial(m: np.ndarray, note: str) -> dict:
    """(H, W) map -> an overlay entry scaled to its range (stated in the note)."""
    m, lo, hi = _normalized(m)
    return {"kind": "spatial", "h": m.shape[0], "w": m.shape[1], "data": quantize(m),
            "note": f"{note}, {lo:.3g} to {hi:.3g}"}


def describe(w: np.ndarray, c: int, h: int, width: int, channel_affinity: bool = False) -> dict:
    """One image's recorded weights of a module whose input is (c, h, width) -> a page entry by axes."""
    hw = h * width
    if w.shape == (h, width, h + width):  # criss-cross: column keys then row keys of each position
        dense = np.zeros((h, width, h, width), dtype=np.float64)
        ii, jj = np.meshgrid(np.arange(h), np.arange(width), indexing="ij")
        for k in range(h):
            dense[ii, jj, k, jj] += w[:, :, k]
        for k in range(width):
            dense[ii, jj, ii, k] += w[:, :, h + k]
        return _self_entry(dense.reshape(hw, hw), h, width, "criss-cross: weights over the query's row and column")
    if channel_affinity or w.size == c:
        if channel_affinity:
            return _bars(w.reshape(-1, c).mean(0), "channel affinity: mean weight each channel receives")
        return _bars(w.reshape(c), "channel gate")
    if w.ndim >= 2 and w.shape[-2:] == (h, width) and hw > 1:
        return _spatial(w.reshape(-1, h, width).mean(0), "spatial map")
    if w.ndim == 3 and w.shape[-1] == 2 and hw > 1:  # a spatial transformer's sampling grid (H', W', 2)
        from vision.attention.stn import sampling_density

        density = sampling_density(torch.from_numpy(w)[None], h, width)[0].numpy()
        return _spatial(density, "spatial transformer: sampling points per pixel")
    if w.ndim == 2 and w.shape[0] == hw and hw > 1:
        return _self_entry(w, h, width, "self-attention over positions")
    if w.ndim == 2 and w.shape[1] == hw and hw > 1:
        return _spatial(w.mean(0).reshape(h, width), f"weights over positions (mean of {w.shape[0]} rows)")
    if w.ndim == 2 and w.shape[0] == c:  # SK: per channel, the weight of each kernel branch
        return _bars(w[:, 0], f"weight of branch 1 of {w.shape[1]} per channel")
    return {"kind": "other", "note": f"weights of shape {list(w.shape)} (not drawn)"}


def transformer_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    """A ViT's logits (1, classes) and entries for one normalized image: per layer, the class token's weights
    over the patches (heads averaged), then the attention rollout (Abnar & Zuidema, 2020) of all layers."""
    with torch.no_grad(), capture_attention(model, cpu=True) as maps:
        logits = model(x)
    h, w = model.grid
    entries = []
    for i in range(len(model.layers)):
        weights = maps[f"layers.{i}.self_attn"][-1][0].float().mean(0)  # (S, S)
        entry = _spatial(weights[0, 1:].reshape(h, w).numpy(), "class token's weights over the patches")
        entries.append({**entry, "name": f"layers.{i}.self_attn", "stage": i + 1})
    rollout = model.rollout_from(maps)[0].numpy()
    entries.append({**_spatial(rollout, "class token's attention rollout over all layers"), "name": "rollout",
                    "stage": len(model.layers) + 1})
    return logits, entries


def module_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    """Logits (1, classes) and every attention module's entries for one normalized image (1, C, H, W)."""
    from vision.attention.danet import ChannelContrastScore

    if hasattr(model, "rollout_from"):
        return transformer_maps(model, x)
    if hasattr(model, "regions_as_masks"):  # RA-CNN: its recorded squares, drawn as the masks it crops with
        with torch.no_grad(), capture_attention(model, cpu=True) as maps:
            logits = model(x)
        masks = model.regions_as_masks(maps[""][0], *x.shape[-2:])[0].numpy()  # (S - 1, H, W)
        return logits, [dict(_spatial(m, f"RA-CNN: the region zoomed into at scale {s + 2} (boxcar mask)"),
                             name=f"region of scale {s + 2}", stage=0) for s, m in enumerate(masks)]
    modules = model.attention_modules() if hasattr(model, "attention_modules") else []
    names = {id(m): n for n, m in model.named_modules()}
    shapes: dict[str, tuple[int, ...]] = {}

    def keep_shape(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        shapes.setdefault(names[id(module)], tuple(inputs[0].shape))

    hooks = [m.register_forward_hook(keep_shape) for m in modules]
    try:
        with torch.no_grad(), capture_attention(model, cpu=True) as maps:
            logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    entries = []
    for name, calls in maps.items():
        owner = next((p for p in shapes if name == p or name.startswith(p + ".")), None)
        if owner is None or not calls:
            continue
        _, c, h, w = shapes[owner]
        affinity = isinstance(getattr(model.get_submodule(name), "score", None), ChannelContrastScore)
        stage = int(name.split(".")[1]) + 1 if name.startswith("stages.") else 0
        for k, weights in enumerate(calls):
            entry = describe(weights[0].float().numpy(), c, h, w, affinity)
            entry.update(name=name + (f" (pass {k + 1})" if len(calls) > 1 else ""), stage=stage)
            entries.append(entry)
    return logits, entries


def grad_cam(model: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """(H, W) Grad-CAM of class ``target`` on the last stage, upsampled to the image, ReLU, scaled to [0, 1]."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = getattr(model, "cam_layer", None) or (model.stages[-1] if hasattr(model, "stages") else model)
    attr = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    up = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    cam = up[0, 0].detach().double().cpu().numpy().clip(min=0)
    return cam / max(cam.max(), 1e-12)


def vision_data(run, paths: Sequence[Path]) -> dict:
    """Page data for the images at ``paths`` with a loaded run (:func:`vision.lifecycle.load_run`)."""
    from vision.saliency import itti_koch_saliency

    classes = run.inputs.classes
    images = []
    for path in paths:
        img = load_image(path, run.inputs.image_shape)
        x = run.prepare_inputs(img[None].to(run.device))
        logits, entries = module_maps(run.model, x)
        probs = torch.softmax(logits[0].float(), -1).cpu()
        target = int(probs.argmax())
        label = classes[target] if target < len(classes) else str(target)
        images.append({"name": path.name, "png": png_base64(img), "label": label,
                       "prob": rounded([probs[target]])[0], "gradcam": quantize(grad_cam(run.model, x, target)),
                       "saliency": quantize(itti_koch_saliency(img[None])[0].numpy()),
                       "h": img.shape[1], "w": img.shape[2], "entries": entries})
    notes = ("Per stage, each attention module's weights on the image: spatial maps as overlays (scaled to their "
             "range), channel gates as bars (scaled to their largest), self-attention as a query picker: click a "
             f"position on the left to see its weights over the keys on the right (each query scaled to its largest "
             f"weight; at most {MAX_QUERY_SIDE} x {MAX_QUERY_SIDE} query positions, strided). Grad-CAM of the "
             "predicted class (captum, last stage) and the bottom-up saliency map of Itti, Koch and Niebur (1998; not "
             "learned) beside the input.")
    return {"notes": notes, "images": images}
