"""Running a study: each cell trains through its task's lifecycle (the one Trainer) in its own run dir,
then its results file is written; finished cells are reused, killed ones resume, failed ones are recorded.

Layout under ``study.out_dir``::

    cells/<task>__<mechanism>__seed<N>/run/          the cell's training run dir (config, checkpoints, logs)
    cells/<task>__<mechanism>__seed<N>/result.json   quality, cost, attention statistics (atomic write)
    cells/<task>__<mechanism>__seed<N>/error.txt     the traceback of a failed cell (removed once it succeeds)

A cell with a ``result.json`` of the same settings is reused as it is; a cell whose run dir holds a
checkpoint resumes from it (the Trainer's exact resume); any other cell starts over. Several processes share
the cells by index (cell ``i`` belongs to process ``i mod n``: ``--shard i/n`` or torchrun's RANK and
WORLD_SIZE); each trains its cells in a single process.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..training.checkpoint import atomic_write_bytes, atomic_write_json, read_latest
from ..training.config import cpu_threads
from ..training.runtime import resolve_device
from . import measure, tasks
from .config import Cell, StudyConfig, cell_identity, check_cell_configs, expand_cells, modality

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"


def cell_dir(cfg: StudyConfig, cell: Cell) -> Path:
    return Path(cfg.study.out_dir) / "cells" / cell.name


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ``ValueError`` naming ``--shard`` otherwise."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/2") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def env_shard() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) under torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """The cells of process ``index`` of ``count``: those whose index is ``index`` modulo ``count``."""
    return [c for c in cells if c.index % count == index]


def read_result(cfg: StudyConfig, cell: Cell) -> dict | None:
    """The cell's results when its ``result.json`` exists and was made with the same settings (its
    :meth:`Cell.identity`: the cell's index, its place in the order, does not count), else None."""
    path = cell_dir(cfg, cell) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or cell_identity(saved.get("cell")) != cell.identity():
        return None
    return saved


def cell_state(cfg: StudyConfig, cell: Cell) -> str:
    """Where the cell stands on disk: ``done`` (a result.json of its settings: reused), ``stale`` (a
    result.json of other settings: starts over), ``failed`` (an error.txt: retried), ``partial`` (a
    checkpoint: resumes) or ``not run``."""
    folder = cell_dir(cfg, cell)
    if read_result(cfg, cell) is not None:
        return "done"
    if (folder / RESULT_FILE).is_file():
        return "stale"
    if (folder / ERROR_FILE).is_file():
        return "failed"
    return "partial" if read_latest(folder / "run") is not None else "not run"


def list_cells(cfg: StudyConfig, shard: tuple[int, int] | None = None) -> list[tuple[Cell, str]]:
    """Every cell of the study (of ``shard`` (i, n) only, when given) with its :func:`cell_state`; nothing
    is trained or written."""
    cells = expand_cells(cfg)
    if shard is not None:
        cells = shard_cells(cells, *shard)
    return [(cell, cell_state(cfg, cell)) for cell in cells]


def train_cell(cfg: StudyConfig, cell: Cell, device: str) -> tuple[Path, bool]:
    """Train the cell (resuming from its checkpoint when it has one and no results of other settings);
    returns (run dir, resumed).
    Raises ``RuntimeError`` when the Trainer exits with a non-zero code."""
    run_dir = cell_dir(cfg, cell) / "run"
    # A results file of other settings (the study file changed): that run is stale, start it over.
    stale = (cell_dir(cfg, cell) / RESULT_FILE).is_file()
    resume = not stale and read_latest(run_dir) is not None
    overrides = {**cell.overrides, "training.run_dir": str(run_dir), "training.device": device}
    code = tasks.train(cell.kind, cell.config, overrides, resume=resume, overwrite=not resume, device=device)
    if code == 130:
        raise KeyboardInterrupt(f"{run_dir}: stopped by a signal")
    if code != 0:
        raise RuntimeError(f"{run_dir}: training exited with code {code}")
    return run_dir, resume


def measure_cell(cfg: StudyConfig, cell: Cell, run_dir: Path, device: str) -> dict:
    """Quality, cost and attention statistics of a trained cell."""
    s = cfg.study
    quality = tasks.quality(cell.kind, run_dir, device)
    task, model = tasks.load_task(cell.kind, run_dir, device)
    dev = next(model.parameters()).device
    batches = tasks.batches(task, s.stat_batches, dev)
    with cpu_threads(s.bench_threads if dev.type == "cpu" else None):
        cost = measure.cost(task, model, batches[0], dev, s.bench_warmup, s.bench_repeats)
    stats = measure.init_and_trained_stats(task, model, batches, modality(cell.kind) == "image", cell.seed,
                                           dev, task.build_model, tasks.feature_grid(cell.kind, task, model))
    return {"quality": quality, "metric": cfg.tasks[cell.task].metric, "cost": cost, "attention": stats}


def run_cell(cfg: StudyConfig, cell: Cell, device: str) -> dict:
    """Train and measure one cell and write its ``result.json`` (atomically); returns the results."""
    folder = cell_dir(cfg, cell)
    start = time.perf_counter()
    run_dir, resumed = train_cell(cfg, cell, device)
    trained = time.perf_counter() - start
    result = {"cell": asdict(cell), **measure_cell(cfg, cell, run_dir, device), "train_seconds": trained,
              "resumed": resumed, "torch": torch.__version__, "device": device,
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / RESULT_FILE, result)
    return result


@dataclass
class StudyProgress:
    """What one process did: cells reused, trained and failed (with their one-line errors), and whether it
    stopped at ``max_cells``."""

    total: int
    reused: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    seconds: list[float] = field(default_factory=list)

    @property
    def done(self) -> int:
        return len(self.reused) + len(self.trained) + len(self.failed)

    def eta(self) -> str:
        """Time left: the mean time of the cells trained so far times the cells left."""
        if not self.seconds:
            return "unknown"
        left = sum(self.seconds) / len(self.seconds) * (self.total - self.done)
        return f"{int(left // 60)} min {int(left % 60):02d} s"


def run_study(cfg: StudyConfig, shard: tuple[int, int] | None = None, max_cells: int | None = None,
              log: Callable[[str], None] = print) -> StudyProgress:
    """Run this process's share of the study's cells (``shard`` (i, n); default torchrun's rank or all).
    ``max_cells``: train at most that many cells, then stop (reused cells do not count). A cell's failure
    is recorded in its ``error.txt`` and the others go on; Ctrl-C stops the study (a resumable state)."""
    cells = expand_cells(cfg)
    check_cell_configs(cfg, cells)
    index, count = shard or env_shard()
    mine = shard_cells(cells, index, count)
    device = str(resolve_device(cfg.study.device))
    progress = StudyProgress(len(mine))
    where = f" (process {index} of {count})" if count > 1 else ""
    log(f"study {cfg.path}: {len(cells)} cells, {len(mine)} here{where}")
    for cell in mine:
        if read_result(cfg, cell) is not None:
            progress.reused.append(cell.name)
            log(f"[{progress.done}/{progress.total}] {cell.name}: reused its result.json")
            continue
        if max_cells is not None and len(progress.trained) + len(progress.failed) >= max_cells:
            progress.stopped_early = True
            log(f"stopped after {max_cells} trained cells (--max-cells); run again to continue")
            break
        start = time.perf_counter()
        try:
            result = run_cell(cfg, cell, device)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one failed cell must not stop the study
            progress.failed[cell.name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            folder = cell_dir(cfg, cell)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / ERROR_FILE, traceback.format_exc().encode("utf-8"))
            log(f"[{progress.done}/{progress.total}] {cell.name}: FAILED: {progress.failed[cell.name]}")
            continue
        (cell_dir(cfg, cell) / ERROR_FILE).unlink(missing_ok=True)  # an earlier failure, fixed now
        progress.seconds.append(time.perf_counter() - start)
        progress.trained.append(cell.name)
        figure = result["quality"].get(result["metric"])
        shown = f"{result['metric']} {figure:.2f}" if isinstance(figure, float) else "no quality figure"
        log(f"[{progress.done}/{progress.total}] {cell.name}: {shown} in {progress.seconds[-1]:.0f} s; "
            f"about {progress.eta()} left")
    return progress
