"""How far a trained vision run's learned spatial attention agrees with bottom-up saliency (Itti, Koch and
Niebur, 1998): the Spearman rank correlation, per image, between the Itti-Koch saliency map
(``vision.saliency``) and the run's attention map (``vision.attention_maps.attention_heatmaps``: the deepest
spatial map of its attention modules, e.g. CBAM's spatial gate or scSE's sSE, or a ViT's attention rollout), both
at the image's size, over N test images.

Two references read the number: the same correlation with the Itti-Koch map of *another* image (a shuffled
pairing: what any two maps share, e.g. a centre bias, without the image's content) and with a centred Gaussian.

    SEQ2SEQ_ATTN_DATA=/path/to/data python scripts/saliency_agreement.py runs/RUN [--images 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from vision.attention_maps import attention_heatmaps
from vision.lifecycle import load_run
from vision.saliency import itti_koch_saliency


def spearman_rows(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman's rho of each pair of maps a[i], b[i] (N, H, W) over their pixels: (N,) (nan for a constant map)."""
    return np.array([spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a.numpy(), b.numpy())])


def centre_prior(h: int, w: int) -> torch.Tensor:
    """An isotropic Gaussian at the image centre, sigma a quarter of the shorter side: (H, W)."""
    yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    return torch.exp(-(yy ** 2 + xx ** 2) / (2 * (min(h, w) / 4) ** 2))


def summary(rho: np.ndarray) -> dict[str, float]:
    rho = rho[np.isfinite(rho)]
    return {"mean": float(rho.mean()), "std": float(rho.std()), "positive": float((rho > 0).mean()),
            "n": int(rho.size)}


def agreement(run_dir: Path, images: int, seed: int, batch: int) -> dict:
    """The figures for ``images`` test images (a seeded random subset) of the run in ``run_dir``."""
    run = load_run(run_dir, "cpu")
    test = run.task.test_set
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(test), generator=g)[:images].sort().values
    pictures = test.images[idx]  # uint8 (N, C, H, W)
    learned, saliency, note = [], [], ""
    for start in range(0, len(pictures), batch):
        chunk = pictures[start:start + batch]
        maps = attention_heatmaps(run.model, run.prepare_inputs(chunk))
        if maps is None:
            raise SystemExit(f"{run_dir}: the model has no attention module to compare")
        learned.append(maps[0])
        note = maps[1]
        saliency.append(itti_koch_saliency(chunk))
    learned_maps, itti = torch.cat(learned), torch.cat(saliency)
    shuffled = itti[torch.roll(torch.arange(len(itti)), 1)]  # each image against its neighbour's saliency
    prior = centre_prior(*itti.shape[-2:]).expand_as(itti)
    return {"run": str(run_dir), "images": len(pictures), "seed": seed, "learned_map": note,
            "model": run.cfg.model.arch, "attention": run.cfg.model.attention,
            "itti_vs_learned": summary(spearman_rows(itti, learned_maps)),
            "shuffled_itti_vs_learned": summary(spearman_rows(shuffled, learned_maps)),
            "centre_vs_learned": summary(spearman_rows(prior, learned_maps)),
            "centre_vs_itti": summary(spearman_rows(prior, itti))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--images", type=int, default=200, help="test images (a seeded random subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch < 1:
        parser.error("--images and --batch must be >= 1")
    result = agreement(args.run_dir, args.images, args.seed, args.batch)
    print(f"{result['run']} ({result['model']}, attention {result['attention']}; learned map: "
          f"{result['learned_map']}), {result['images']} test images, Spearman rho per image:")
    print("| pair | mean rho | std | share > 0 |\n| --- | --- | --- | --- |")
    for key in ("itti_vs_learned", "shuffled_itti_vs_learned", "centre_vs_learned", "centre_vs_itti"):
        s = result[key]
        print(f"| {key.replace('_', ' ')} | {s['mean']:.3f} | {s['std']:.3f} | {s['positive']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
