"""The study's figures (matplotlib, Agg): quality per task and mechanism with the seed spread, attention
entropy before and after training, and cost growth on log-log axes with the fitted exponents."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from ..plotting import save_figure

if TYPE_CHECKING:
    from .config import StudyConfig
    from .growth import GrowthRow
    from .report import CellRow


PANELS_PER_ROW = 4
FAMILY_COLORS = {"baseline": "tab:gray", "channel gate": "tab:green"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_task(rows: list[CellRow]) -> dict[str, dict[str, list[CellRow]]]:
    out: dict[str, dict[str, list[CellRow]]] = {}
    for r in rows:
        out.setdefault(r.cell.task, {}).setdefault(r.cell.mechanism, []).append(r)
    return out


def plot_quality(cfg: StudyConfig, rows: list[CellRow], path: Path) -> bool:
    """One panel per task (at most :data:`PANELS_PER_ROW` a row): mean over seeds (bar) ± std (error bar) and
    each seed (dots); gray: the baseline, green: channel gates, blue: the others. False (nothing written)
    when no cell is done."""
    tasks = {t: m for t, m in _by_task(rows).items() if any(r.result for rs in m.values() for r in rs)}
    if not tasks:
        return False
    plt = _pyplot()
    cols = min(PANELS_PER_ROW, len(tasks))
    rows_n = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, rows_n * (0.35 * max(map(len, tasks.values())) + 1.8)),
                             squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, (task, mechs) in zip(axes.flat, tasks.items()):
        names = list(mechs)
        values = [[v for r in mechs[m] if (v := r.figure()) is not None] for m in names]
        means = [statistics.fmean(v) if v else math.nan for v in values]
        stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        ys = range(len(names))
        colors = [FAMILY_COLORS.get(mechs[m][0].cell.family, "tab:blue") for m in names]
        ax.barh(list(ys), means, xerr=stds, color=colors, alpha=0.7)
        for y, vals in zip(ys, values):
            ax.plot(vals, [y] * len(vals), "k.", markersize=4)
        finite = [v for vals in values for v in vals]
        if finite:
            lo, hi = min(finite), max(finite)
            pad = max(hi - lo, abs(hi) * 0.02, 0.01)
            ax.set_xlim(lo - pad, hi + 0.5 * pad)
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"{task}: test {cfg.tasks[task].metric}")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("mean ± std over seeds (dots: seeds); differences inside the seed noise are not claimed", fontsize=9)
    save_figure(fig, path)
    return True


def plot_attention(rows: list[CellRow], path: Path) -> bool:
    """Entropy / log N of the attention rows before and after training, per task and mechanism."""
    pairs = []
    for task, mechs in _by_task(rows).items():
        for mech, cells in mechs.items():
            done = [r.result["attention"] for r in cells if r.result]
            init = [d["init"]["entropy_ratio"] for d in done if "entropy_ratio" in d["init"]]
            trained = [d["trained"]["entropy_ratio"] for d in done if "entropy_ratio" in d["trained"]]
            if init and trained:
                pairs.append((f"{task}/{mech}", statistics.fmean(init), statistics.fmean(trained)))
    if not pairs:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(pairs) + 1.4))
    ys = list(range(len(pairs)))
    ax.barh([y - 0.2 for y in ys], [p[1] for p in pairs], height=0.4, label="init", color="tab:gray")
    ax.barh([y + 0.2 for y in ys], [p[2] for p in pairs], height=0.4, label="trained", color="tab:orange")
    ax.set_yticks(ys)
    ax.set_yticklabels([p[0] for p in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("attention entropy / log N (1 = uniform)")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
    return True


def plot_growth(rows: list[GrowthRow], path: Path) -> None:
    """Forward time and peak memory against N on log-log axes, text and image mechanisms apart; the legend
    gives each mechanism's fitted time exponent; a cross marks where a mechanism stopped."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for col, modality in enumerate(("text", "image")):
        for row, (key, label) in enumerate((("fwd_ms", "forward ms"), ("fwd_peak", "forward peak MiB"))):
            ax = axes[row][col]
            for r in (r for r in rows if r.modality == modality):
                ok = [p for p in r.points if p.status == "ok"]
                if not ok:
                    continue
                ys = [getattr(p, key) / (2**20 if key == "fwd_peak" else 1) for p in ok]
                k = r.time_exponent if key == "fwd_ms" else r.memory_exponent
                line, = ax.plot([p.positions for p in ok], ys, "o-", markersize=3,
                                label=f"{r.mechanism} (k={k:.2f})" if k is not None else r.mechanism)
                stopped = [p for p in r.points if p.status != "ok"]
                if stopped:
                    ax.plot([stopped[0].positions], [ys[-1]], "x", color=line.get_color(), markersize=8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"positions N ({'tokens' if modality == 'text' else 'S x S map'})")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("cost growth (x: first size not run: out of memory or over the cap)", fontsize=9)
    save_figure(fig, path)
