"""The outputs of ``vision compare``: one :class:`ModuleResult` row per module, written as a Markdown table
(``results.md``), a CSV file (``results.csv``) and bar charts (``comparison.png``)."""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

BASELINE = "none"  # the backbone without an attention module


@dataclass
class ModuleResult:
    """One table row."""

    module: str
    params: int | None = None
    flops: int | None = None  # forward FLOPs per image
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    fwd_peak: int | None = None  # bytes
    fwd_bwd_peak: int | None = None
    accs: list[float] = field(default_factory=list)  # test accuracy (%) per seed
    train_seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a run stopped by training.max_minutes
    error: str | None = None

    @property
    def acc_mean(self) -> float | None:
        return statistics.fmean(self.accs) if self.accs else None

    @property
    def acc_std(self) -> float | None:
        return statistics.stdev(self.accs) if len(self.accs) > 1 else (0.0 if self.accs else None)


def _fmt(value: float | int | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def write_table(results: list[ModuleResult], path: Path, header: str) -> str:
    base = next((r for r in results if r.module == BASELINE and r.params is not None), None)
    lines = [header, "",
             "| module | params | Δ params | MFLOPs/img | fwd ms | fwd+bwd ms | fwd peak MB | fwd+bwd peak MB "
             "| test acc % (mean ± std) | seeds | train s/run | note |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if r.error:
            lines.append(f"| {r.module} |  |  |  |  |  |  |  |  |  |  | error: {r.error} |")
            continue
        delta = "–" if base is None or r.params is None else f"{r.params - base.params:+,}"
        acc = "–" if r.acc_mean is None else f"{r.acc_mean:.2f} ± {r.acc_std:.2f}"
        mb = [None if v is None else v / 2**20 for v in (r.fwd_peak, r.fwd_bwd_peak)]
        lines.append(
            f"| {r.module} | {_fmt(r.params, ',')} | {delta} | {_fmt(r.flops and r.flops / 1e6, '.2f')} "
            f"| {_fmt(r.fwd_ms, '.2f')} | {_fmt(r.fwd_bwd_ms, '.2f')} | {_fmt(mb[0], '.2f')} | {_fmt(mb[1], '.2f')} "
            f"| {acc} | {len(r.accs)} | {_fmt(statistics.fmean(r.train_seconds) if r.train_seconds else None, '.0f')} "
            f"| {'; '.join(r.notes)} |"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def write_csv(results: list[ModuleResult], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["module", "params", "flops_per_image", "fwd_ms", "fwd_bwd_ms", "fwd_peak_bytes",
                         "fwd_bwd_peak_bytes", "acc_mean", "acc_std", "seeds", "accs", "train_seconds", "notes",
                         "error"])
        for r in results:
            writer.writerow([r.module, r.params, r.flops, r.fwd_ms, r.fwd_bwd_ms, r.fwd_peak, r.fwd_bwd_peak,
                             r.acc_mean, r.acc_std, len(r.accs), " ".join(f"{a:.2f}" for a in r.accs),
                             " ".join(f"{s:.1f}" for s in r.train_seconds), "; ".join(r.notes), r.error or ""])


def plot_bars(results: list[ModuleResult], path: Path, title: str) -> None:
    """Horizontal bars per module: test accuracy (± std), parameters, forward+backward latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.error is None]
    names = [r.module for r in rows]
    panels = [("test accuracy %", [r.acc_mean for r in rows], [r.acc_std for r in rows]),
              ("parameters (K)", [r.params / 1e3 if r.params else None for r in rows], None),
              ("fwd+bwd ms", [r.fwd_bwd_ms for r in rows], None)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.28 * len(rows) + 1.6), sharey=True)
    ys = list(range(len(rows)))
    for ax, (label, values, errs) in zip(axes, panels):
        vals = [v if v is not None else math.nan for v in values]
        colors = ["tab:gray" if n == BASELINE else "tab:blue" for n in names]  # the baseline stands out
        ax.barh(ys, vals, xerr=[e or 0.0 for e in errs] if errs else None, color=colors, alpha=0.8)
        ax.set_xlabel(label)
        finite = [v for v in vals if math.isfinite(v)]
        if label.startswith("test") and finite:
            spread = max(finite) - min(finite)
            ax.set_xlim(max(0.0, min(finite) - max(spread, 0.5)), min(100.0, max(finite) + 0.3 * max(spread, 0.5)))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

