"""The study's report in ``study.out_dir``: ``report.md`` (tables and reading aids), ``report.html`` (the
same as one page in the explorer's style), ``cells.csv`` (one row per cell), ``growth.csv``, and the figures
``quality.png``, ``growth.png`` and ``attention.png``.

The report merges whatever results exist (cells of every process, a growth measurement when
``growth.json`` is there); cells not run yet and failed cells are listed as such, so every cell of the
study appears in it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from ..training.checkpoint import atomic_write_bytes
from .config import Cell, StudyConfig, default_mechanism, expand_cells, modality
from .growth import GrowthRow, rows_from_dict
from .html import write_html
from .papers import PAPERS_SECTION
from .runner import ERROR_FILE, cell_dir, read_result

GROWTH_FILE = "growth.json"
NOISE_NOTE = "Differences inside the seed noise are not claimed."


@dataclass
class CellRow:
    """One cell and what it left: its results, or its error's last line, or neither (not run yet)."""

    cell: Cell
    result: dict | None
    error: str | None
    #: the quality figure reported; empty: the one the cell was measured with. The study file's task
    #: ``metric`` names it, so changing which figure a report leads with needs no retraining.
    metric: str = ""

    @property
    def status(self) -> str:
        return "done" if self.result else ("failed" if self.error else "not run")

    @property
    def metric_name(self) -> str:
        return self.metric or (self.result or {}).get("metric", "")

    def figure(self) -> float | None:
        if not self.result:
            return None
        value = self.result["quality"].get(self.metric_name)
        return float(value) if isinstance(value, (int, float)) else None


def collect(cfg: StudyConfig) -> list[CellRow]:
    """Every cell of the study with its state on disk."""
    rows = []
    for cell in expand_cells(cfg):
        result = read_result(cfg, cell)
        err_file = cell_dir(cfg, cell) / ERROR_FILE
        error = None
        if result is None and err_file.is_file():
            lines = [ln for ln in err_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
            error = lines[-1][:300] if lines else "failed"
        rows.append(CellRow(cell, result, error, cfg.tasks[cell.task].metric))
    return rows


def _groups(rows: list[CellRow]) -> dict[tuple[str, str], list[CellRow]]:
    groups: dict[tuple[str, str], list[CellRow]] = {}
    for r in rows:
        groups.setdefault((r.cell.task, r.cell.mechanism), []).append(r)
    return groups


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def noise_notes(stats: dict[str, tuple[float | None, float | None, int]]) -> dict[str, str]:
    """Per mechanism of one task ({mechanism: (mean, std, seeds)}), how it stands against the best mean:
    ``best``, ``within seed noise of best`` (mean ± std intervals overlap), ``below best`` (they do not),
    or ``one seed: no claim`` (no spread to judge)."""
    scored = {m: s for m, s in stats.items() if s[0] is not None}
    if not scored:
        return {}
    best = max(scored, key=lambda m: scored[m][0])
    b_mean, b_std, _ = scored[best]
    notes = {best: "best"}
    for m, (mean, std, _) in scored.items():
        if m == best:
            continue
        if std is None or b_std is None:
            notes[m] = "one seed: no claim"
        elif mean + std >= b_mean - b_std:
            notes[m] = f"within seed noise of {best}"
        else:
            notes[m] = f"below {best} (spreads do not overlap)"
    return notes


def _mean_of(cells: list[CellRow], key: str) -> float | None:
    """The mean over the done cells of the test figure ``key`` (None when no cell has it)."""
    values = [float(r.result["quality"][key]) for r in cells if r.result and key in r.result["quality"]]
    return statistics.fmean(values) if values else None


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def quality_section(cfg: StudyConfig, rows: list[CellRow]) -> list[str]:
    lines = ["## Quality", "", f"Mean ± sample std over seeds {cfg.study.seeds}. {NOISE_NOTE}", ""]
    groups = _groups(rows)
    for task_name, task in cfg.tasks.items():
        mechs = [m for (t, m) in groups if t == task_name]
        stats = {}
        for m in mechs:
            values = [v for r in groups[(task_name, m)] if (v := r.figure()) is not None]
            stats[m] = (*_mean_std(values), len(values))
        notes = noise_notes(stats)
        also = task.also or []
        lines += [f"### {task_name} ({task.kind}, {task.config}; test {task.metric})", "",
                  f"| mechanism | family | {task.metric} (mean ± std) | seeds done | per seed | "
                  f"{', '.join(also) + ' (means) | ' if also else ''}note |",
                  "| --- | --- | ---: | ---: | --- | " + ("--- | " if also else "") + "--- |"]
        for m in mechs:
            mean, std, n = stats[m]
            cells = groups[(task_name, m)]
            per_seed = " ".join(_fmt(r.figure()) for r in cells)
            states = {r.status for r in cells} - {"done"}
            note = "; ".join([x for x in [notes.get(m, "")] + sorted(states) if x])
            others = " / ".join(_fmt(_mean_of(cells, key)) for key in also)
            lines.append(f"| {m} | {cells[0].cell.family} | {_fmt(mean)} ± {_fmt(std)} | {n}/{len(cells)} "
                         f"| {per_seed} | {others + ' | ' if also else ''}{note} |")
        lines.append("")
    return lines


def _task_stats(rows: list[CellRow], task: str) -> dict[str, tuple[float | None, float | None, int]]:
    groups = _groups(rows)
    out = {}
    for (t, m), cells in groups.items():
        if t == task:
            values = [v for r in cells if (v := r.figure()) is not None]
            out[m] = (*_mean_std(values), len(values))
    return out


def findings_section(cfg: StudyConfig, rows: list[CellRow], baseline: str = "none") -> list[str]:
    """Computed reading aids, per task and per modality: the best mechanism and whether it is above the
    no-attention baseline beyond the seed noise (mean - std above the baseline's mean + std)."""
    lines = ["## Across text and images", "",
             f"Computed from the quality table: does the best mechanism of each task beat `{baseline}` (no "
             "attention) beyond the seed noise? Read it with the cost table: a gain that costs 3x the time "
             "is a different finding from a free one.", ""]
    verdicts: dict[str, list[bool]] = {"text": [], "image": []}
    for task_name, task in cfg.tasks.items():
        stats = {m: s for m, s in _task_stats(rows, task_name).items() if s[0] is not None}
        if not stats:
            lines.append(f"- {task_name}: no results yet.")
            continue
        best = max(stats, key=lambda m: stats[m][0])
        mean, std, _ = stats[best]
        shown = f"{mean:.3g}" + (f" ± {std:.2g}" if std is not None else "")
        base = stats.get(baseline)
        if base is None or best == baseline:
            verdict = "the baseline itself is best" if best == baseline else f"no `{baseline}` cell to compare"
            beats = False if best == baseline else None
        elif std is None or base[1] is None:
            verdict, beats = "one seed: not judged", None
        else:
            beats = mean - std > base[0] + base[1]
            verdict = (f"above `{baseline}` ({base[0]:.3g} ± {base[1]:.2g}) beyond the seed noise" if beats else
                       f"inside the seed noise of `{baseline}` ({base[0]:.3g} ± {base[1]:.2g}): not claimed")
        if beats is not None:
            verdicts[modality(task.kind)].append(beats)
        lines.append(f"- {task_name} ({task.kind}, test {task.metric}): best `{best}` {shown}; {verdict}.")
    lines.append("")
    for kind_of_positions, got in verdicts.items():
        if got:
            lines.append(f"- {kind_of_positions} tasks where attention beats no attention beyond the noise: "
                         f"{sum(got)} of {len(got)} judged.")
    return lines + [""]


GATE_FAMILY = "channel gate"


def gates_section(cfg: StudyConfig, rows: list[CellRow]) -> list[str]:
    """The channel gates (SE, ECA: one module) on text encoders' feature channels and on image channels, side
    by side: each gate's quality against the same task's model without it (:func:`default_mechanism`) and
    against ``none``, the parameters it adds and its gates' statistics. Empty when no task has a gate."""
    groups = _groups(rows)
    gated = [(t, m) for (t, m), cells in groups.items() if cells[0].cell.family == GATE_FAMILY]
    if not gated:
        return []
    lines = ["## Channel gates on text and on images", "",
             "The same SE and ECA modules (`seq2seq_attn/layers/gates.py`) on the feature channels of a text "
             "encoder (before the attention pooling; squeeze over the real tokens) and on the channels of an "
             "image CNN. Δ: the gate's mean minus the mean of the same task's model without the gate (text: the "
             "task's own pooling; images: no module) — inside the seed noise when |Δ| is below the larger std. "
             f"{NOISE_NOTE}", "",
             "| modality | task | gate | quality (mean ± std) | without the gate | Δ | vs none | params added "
             "| gate mean | gate < 0.1 |", "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    references = {t: default_mechanism(cfg, t) for t in {t for t, _ in gated}}
    for task, mech in sorted(gated, key=lambda tm: (cfg.tasks[tm[0]].kind == "vision", tm[0], tm[1])):
        lines.append(_gate_row(cfg, rows, groups, task, mech, references[task]))
    return lines + [""]


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _gate_row(cfg: StudyConfig, rows: list[CellRow], groups: dict[tuple[str, str], list[CellRow]], task: str,
              mech: str, ref: str | None) -> str:
    """One row of :func:`gates_section`: gate ``mech`` on ``task`` against mechanism ``ref`` and ``none``."""
    stats = _task_stats(rows, task)
    mean, std, _ = stats[mech]
    ref_mean, ref_std, _ = stats.get(ref or "", (None, None, 0))
    delta = _diff(mean, ref_mean)
    noise = max(v for v in (std, ref_std, 0.0) if v is not None)
    shown = _fmt(delta, "+.3f") + (" (noise)" if delta is not None and abs(delta) <= noise else "")
    params = _params(groups[(task, mech)]), _params(groups.get((task, ref or ""), []))
    added = f"{params[0] - params[1]:,}" if None not in params else "–"
    trained = [r.result["attention"]["trained"] for r in groups[(task, mech)] if r.result]
    gate = [statistics.fmean(x[k] for x in trained if k in x) if any(k in x for x in trained) else None
            for k in ("gate_mean", "gate_sparsity")]
    return (f"| {modality(cfg.tasks[task].kind)} | {task} | {mech} | {_fmt(mean, '.3f')} ± {_fmt(std, '.3f')} "
            f"| {ref or '–'} "
            f"{_fmt(ref_mean, '.3f')} | {shown} | {_fmt(_diff(mean, stats.get('none', (None,))[0]), '+.3f')} "
            f"| {added} | {_fmt(gate[0])} | {_fmt(gate[1])} |")


def _params(cells: list[CellRow]) -> int | None:
    done = [r.result for r in cells if r.result]
    return int(done[0]["cost"]["params"]) if done else None


def cost_section(cfg: StudyConfig, rows: list[CellRow]) -> list[str]:
    lines = ["## Cost", "",
             "One training batch of the task (the first of epoch 0), through the task's own loss: forward "
             "FLOPs (torch.utils.flop_counter), median forward / forward+backward latency and peak tensor "
             f"memory ({cfg.study.bench_threads} CPU thread(s) on {cfg.study.device}); training wall time "
             "of the cell (mean over seeds).", "",
             "| task | mechanism | params | MFLOPs/batch | items/batch | fwd ms | fwd+bwd ms | fwd+bwd peak MiB "
             "| train s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (task, mech), cells in _groups(rows).items():
        done = [r.result for r in cells if r.result]
        if not done:
            lines.append(f"| {task} | {mech} | – | – | – | – | – | – | – |")
            continue
        c = done[0]["cost"]
        train = statistics.fmean(d["train_seconds"] for d in done)
        lines.append(f"| {task} | {mech} | {c['params']:,} | {c['flops'] / 1e6:.1f} | {c['batch_items']} "
                     f"| {c['fwd_ms']:.2f} | {c['fwd_bwd_ms']:.2f} | {c['fwd_bwd_peak'] / 2**20:.1f} | {train:.0f} |")
    return lines + [""]


def attention_section(rows: list[CellRow]) -> list[str]:
    lines = ["## Attention statistics", "",
             "From the weights captured (capture_attention) on the first training batches, model in eval mode, "
             "before training (init: same seed, fresh weights) and after. entropy/log N: 1 = uniform; span90: "
             "keys holding 90 % of a row's mass; spread: RMS distance of an image attention row from its "
             "centre, fraction of the map side; sparsity: weights < 1e-3; gates: mean gate and share < 0.1.", "",
             "| task | mechanism | entropy/log N init → trained | span90 | spread | sparsity | gate mean | "
             "gate < 0.1 |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (task, mech), cells in _groups(rows).items():
        done = [r.result["attention"] for r in cells if r.result]
        if not done:
            continue

        def mean(stage: str, key: str, done: list[dict] = done) -> float | None:
            vals = [d[stage][key] for d in done if key in d[stage]]
            return statistics.fmean(vals) if vals else None

        lines.append(f"| {task} | {mech} | {_fmt(mean('init', 'entropy_ratio'))} → "
                     f"{_fmt(mean('trained', 'entropy_ratio'))} | {_fmt(mean('trained', 'span90'), '.1f')} "
                     f"| {_fmt(mean('trained', 'spread'), '.3f')} | {_fmt(mean('trained', 'sparsity'))} "
                     f"| {_fmt(mean('trained', 'gate_mean'))} | {_fmt(mean('trained', 'gate_sparsity'))} |")
    return lines + [""]


def _first_attention(module: torch.nn.Module) -> tuple[str, str] | None:
    from ..attention import Attention

    for m in module.modules():
        if isinstance(m, Attention):
            return type(m.score).__name__, type(m.normalize).__name__
    return None


def identity_section() -> list[str]:
    """Which core score and normalizer each text and image mechanism runs, read from the built modules."""
    from ..attention import build_normalizer, build_score

    text = {"dot": "Luong dot (RNN decoder), classifier pooling `model.score: dot`",
            "scaled_dot": "Transformer layers, classifier pooling `scaled_dot`",
            "general": "Luong general (bilinear), classifier pooling `general`",
            "additive": "Bahdanau / Luong concat, classifier pooling `additive`"}
    by_pair: dict[tuple[str, str], list[str]] = {}
    for name, where in text.items():
        pair = (type(build_score(name, 4, 4, 4)).__name__, type(build_normalizer("softmax")).__name__)
        by_pair.setdefault(pair, []).append(f"text: {where}")
    try:
        from vision.registry import create_attention, list_attention

        labels = {"non_local": "`non_local` (embedded Gaussian)", "non_local_gaussian": "`non_local_gaussian`",
                  "non_local_dot": "`non_local_dot`", "non_local_concat": "`non_local_concat`", "gc": "`gc`",
                  "apnb": "`apnb` (ANL)", "criss_cross": "`criss_cross`", "sagan": "`sagan`", "da_pam": "`da_pam`"}
        for name in (n for n in labels if n in list_attention()):
            pair = _first_attention(create_attention(name, 16))
            if pair is not None:
                by_pair.setdefault(pair, []).append(f"image: {labels[name]}")
    except ImportError:
        pass
    lines = ["## One core, two modalities", "",
             "The score and normalizer classes each mechanism runs, read from the modules as built: Non-local's "
             "embedded Gaussian is the text models' dot score with a softmax, its dot form the same score with "
             "Non-local's 1/N, and its concatenation form a Score subclass of the core (ReLU(w·[θ; φ]), where "
             "the text concat/additive score is v·tanh(W[q; k])).", "",
             "| core score | normalizer | used by |", "| --- | --- | --- |"]
    for (score, norm), users in by_pair.items():
        lines.append(f"| {score} | {norm} | {'; '.join(users)} |")
    return lines + [""]


def growth_section(rows: list[GrowthRow]) -> list[str]:
    lines = ["## Cost growth with the number of positions", "",
             "Fitted exponent k of time ≈ c N^k (least squares of log time on log N over the measured sizes) and "
             "of peak memory; the last measured size and where each mechanism stopped (out of memory, or "
             "predicted over the configured memory/time cap). At small N fixed overheads flatten the time fit: "
             "k time (top two) is the slope between the two largest sizes measured.", "",
             "| mechanism | modality | k time | k time (top two) | k memory | largest N measured | fwd ms there "
             "| peak MiB there | stopped at |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        ok = [p for p in r.points if p.status == "ok"]
        last = ok[-1] if ok else None
        lines.append(f"| {r.mechanism} | {r.modality} | {_fmt(r.time_exponent)} | {_fmt(r.tail_time_exponent)} "
                     f"| {_fmt(r.memory_exponent)} "
                     f"| {f'{last.positions:,}' if last else '–'} | {_fmt(last.fwd_ms if last else None)} "
                     f"| {_fmt(last.fwd_peak / 2**20 if last and last.fwd_peak else None, '.1f')} "
                     f"| {r.limit or 'all sizes ran'} |")
    return lines + [""]


def cells_csv(rows: list[CellRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["index", "task", "kind", "mechanism", "family", "seed", "status", "metric", "value", "params",
                     "flops", "fwd_ms", "fwd_bwd_ms", "fwd_bwd_peak", "train_seconds", "entropy_ratio_init",
                     "entropy_ratio", "span90", "spread", "sparsity", "gate_mean", "quality", "error"])
    for r in rows:
        c, res = r.cell, r.result or {}
        cost, att = res.get("cost", {}), res.get("attention", {"init": {}, "trained": {}})
        writer.writerow([c.index, c.task, c.kind, c.mechanism, c.family, c.seed, r.status, r.metric_name,
                         r.figure(), cost.get("params"), cost.get("flops"), cost.get("fwd_ms"),
                         cost.get("fwd_bwd_ms"), cost.get("fwd_bwd_peak"), res.get("train_seconds"),
                         att["init"].get("entropy_ratio"), att["trained"].get("entropy_ratio"),
                         att["trained"].get("span90"), att["trained"].get("spread"),
                         att["trained"].get("sparsity"), att["trained"].get("gate_mean"),
                         "; ".join(f"{k}={v:.6g}" for k, v in sorted(res.get("quality", {}).items())),
                         r.error or ""])
    return out.getvalue().encode("utf-8")


def growth_csv(rows: list[GrowthRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["mechanism", "modality", "positions", "fwd_ms", "fwd_bwd_ms", "fwd_peak_bytes", "status"])
    for r in rows:
        for p in r.points:
            writer.writerow([r.mechanism, r.modality, p.positions, p.fwd_ms, p.fwd_bwd_ms, p.fwd_peak, p.status])
    return out.getvalue().encode("utf-8")


def load_growth(out_dir: Path) -> list[GrowthRow] | None:
    path = out_dir / GROWTH_FILE
    if not path.is_file():
        return None
    return rows_from_dict(json.loads(path.read_text(encoding="utf-8"))["rows"])


def _provenance(cfg: StudyConfig, rows: list[CellRow]) -> str:
    """Command, machine and dates: every figure of the report is read with them."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    dates = sorted(r.result["date"] for r in rows if r.result and "date" in r.result)
    when = f"cells measured {dates[0]} to {dates[-1]}" if dates else "no cell measured yet"
    return (f"Command: `seq2seq-attn study {cfg.path}` (then `study growth`, `study report`). Machine: "
            f"{cpu}, {os.cpu_count()} CPUs seen, study device "
            f"{cfg.study.device}, torch {torch.__version__}; {when}.")


def write_report(cfg: StudyConfig, log=print, report_dir: str | Path | None = None) -> Path:
    """Write the report files of ``cfg`` from whatever results exist; returns the Markdown file."""
    from .figures import plot_attention, plot_growth, plot_quality

    out = Path(report_dir or cfg.study.out_dir)  # e.g. docs/study; the results stay in study.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(cfg)
    growth = load_growth(Path(cfg.study.out_dir))
    done = sum(r.status == "done" for r in rows)
    failed = [r for r in rows if r.status == "failed"]
    lines = [f"# {cfg.study.title}", "",
             f"Study file `{cfg.path}`: {len(rows)} cells ({len(cfg.tasks)} tasks × mechanisms × "
             f"{len(cfg.study.seeds)} seeds), {done} done, {len(failed)} failed, "
             f"{len(rows) - done - len(failed)} not run yet.", "", _provenance(cfg, rows), ""]
    figures = {"quality.png": plot_quality(cfg, rows, out / "quality.png"),
               "attention.png": plot_attention(rows, out / "attention.png")}
    lines += quality_section(cfg, rows)
    if figures["quality.png"]:
        lines += ["![quality](quality.png)", ""]
    lines += findings_section(cfg, rows) + gates_section(cfg, rows) + cost_section(cfg, rows)
    lines += attention_section(rows)
    if figures["attention.png"]:
        lines += ["![attention](attention.png)", ""]
    lines += identity_section()
    if growth:
        plot_growth(growth, out / "growth.png")
        lines += growth_section(growth) + ["![growth](growth.png)", ""]
        atomic_write_bytes(out / "growth.csv", growth_csv(growth))
    if failed:
        lines += ["## Failed cells", ""] + [f"- `{r.cell.name}`: {r.error} (traceback: "
                                            f"`{cell_dir(cfg, r.cell) / ERROR_FILE}`)" for r in failed] + [""]
    lines += [PAPERS_SECTION]
    atomic_write_bytes(out / "cells.csv", cells_csv(rows))
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode("utf-8"))
    write_html(out / "report.md", cfg.study.title, list(cfg.tasks))
    log(f"wrote {out / 'report.md'}, report.html, cells.csv" + "".join(f", {k}" for k, v in figures.items() if v)
        + (", growth.csv, growth.png" if growth else ""))
    return out / "report.md"
