"""Writing matplotlib figures: the one helper of the glimpse paths, spatial transformer grids, RA-CNN regions,
caption attention strips and study figures (the older translation heatmaps, classification and vision report
figures still write their PNGs themselves)."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay out the matplotlib figure ``fig``, write it as a PNG to ``path`` (folders made) at ``dpi`` dots per
    inch, close it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
