"""Attention heatmaps: one PNG per sentence, source subwords on x, target subwords on y."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def save_heatmap(weights: torch.Tensor, src_tokens: Sequence[str], tgt_tokens: Sequence[str], path: Path,
                 title: str | None = None) -> Path:
    """Plot ``weights`` (len(tgt_tokens), len(src_tokens)) and write it to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = weights.detach().float().cpu().numpy()
    if weights.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"attention of shape {weights.shape} does not match {len(tgt_tokens)} target and "
                         f"{len(src_tokens)} source tokens")
    fig, ax = plt.subplots(figsize=(max(3.0, 0.38 * len(src_tokens) + 1.5), max(2.5, 0.32 * len(tgt_tokens) + 1.2)))
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=max(1e-6, float(weights.max())), aspect="auto")
    ax.set_xticks(range(len(src_tokens)), labels=list(src_tokens), rotation=90, fontsize=8)
    ax.set_yticks(range(len(tgt_tokens)), labels=list(tgt_tokens), fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
