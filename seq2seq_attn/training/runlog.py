"""Run logging: ``train.log`` (text), ``metrics.jsonl`` (one JSON record per line) and TensorBoard if installed."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .checkpoint import atomic_write_bytes
from .rundir import LOG_FILE, METRICS_FILE, TB_DIR


def _json_value(v: Any) -> Any:
    # JSON has no NaN/Infinity; keep the record valid and the value readable.
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v


class RunLogger:
    """Writes only on the main rank; other ranks get a logger that does nothing."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self._log = open(run_dir / LOG_FILE, "a", encoding="utf-8") if enabled else None  # noqa: SIM115
        self._metrics = open(run_dir / METRICS_FILE, "a", encoding="utf-8") if enabled else None  # noqa: SIM115
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(run_dir / TB_DIR))

    def info(self, message: str) -> None:
        """A line on stderr (without breaking progress bars) and in ``train.log``."""
        if not self.enabled:
            return
        tqdm.write(message, file=sys.stderr)
        self._log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self._log.flush()

    def metrics(self, kind: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **{k: _json_value(v) for k, v in values.items()}}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def truncate_after(self, step: int) -> None:
        """On resume: drop records written after the checkpoint by the run that was killed."""
        if not self.enabled:
            return
        path = self.run_dir / METRICS_FILE
        self._metrics.close()
        kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if _step(line) <= step]
        atomic_write_bytes(path, "".join(kept).encode())
        self._metrics = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        for fh in (self._log, self._metrics):
            if fh is not None:
                fh.close()
        if self._tb is not None:
            self._tb.close()
        self._log = self._metrics = self._tb = None


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 2**62  # a half-written last line from a killed run: drop it
