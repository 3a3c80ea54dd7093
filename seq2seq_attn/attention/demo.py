"""A small look at the core: the same query and keys scored by every score function."""

from __future__ import annotations

from pathlib import Path

import torch

from .core import Attention
from .normalize import build_normalizer
from .scores import build_score

_DEMO_SCORES = ("dot", "scaled_dot", "general", "additive", "location")


def run_demo(out: Path | None, seed: int = 0, num_keys: int = 6, dim: int = 8,
             normalizer: str = "softmax") -> dict[str, torch.Tensor]:
    """Score one query against ``num_keys`` keys with each score function; return the weights by name.

    The keys are random except key 2, which is the query plus a little noise, so similarity-based scores
    should put most weight on it. Parameterized scores (general, additive, location) are freshly initialized:
    their weights show what an untrained model does.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    keys = torch.randn(1, num_keys, dim, generator=gen)  # (B=1, Tk, D)
    query = keys[:, 2:3] + 0.1 * torch.randn(1, 1, dim, generator=gen)  # (B=1, Tq=1, D)
    results = {}
    for name in _DEMO_SCORES:
        attn = Attention(build_score(name, dim, dim, max_keys=num_keys), build_normalizer(normalizer))
        with torch.no_grad():
            _, weights = attn(query, keys)  # (1, 1, Tk)
        results[name] = weights[0, 0]
    if out is not None:
        _plot(results, Path(out))
    return results


def _plot(results: dict[str, torch.Tensor], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    matrix = torch.stack([results[n] for n in names]).numpy()
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * matrix.shape[1], 0.5 + 0.45 * len(names)))
    im = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(matrix.shape[1]), [f"k{i}" for i in range(matrix.shape[1])])
    ax.set_xlabel("key (k2 is the query plus noise)")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title("attention weights by score function")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
