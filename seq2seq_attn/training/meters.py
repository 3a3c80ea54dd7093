"""The Trainer's running sums: over the micro-batches of one optimizer step (:class:`StepSums`, this rank) and
over the steps between two log lines (:class:`LogWindow`, all ranks), which makes the ``train`` log record."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch


@dataclasses.dataclass
class StepSums:
    """Sums over the micro-batches of one optimizer step (this rank)."""

    loss: torch.Tensor | None = None
    items: int = 0
    units: int = 0
    ref: float = 1.0  # global item count the gradients were divided by during backward
    logs: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, loss_sum: torch.Tensor, items: int, units: int, logs: dict[str, Any]) -> None:
        """Add one live micro-batch: its summed loss (kept on the device: no host sync), counts and task logs."""
        loss = loss_sum.detach().float()
        self.loss = loss if self.loss is None else self.loss + loss
        self.items += items
        self.units += units
        for k, v in logs.items():
            self.logs[k] = self.logs.get(k, 0.0) + float(v)


@dataclasses.dataclass
class LogWindow:
    """Sums over the steps between two log lines (global); saved with the trainer state (without ``start``)
    so that a resumed run logs the same averages."""

    loss: float = 0.0
    items: float = 0.0
    units: float = 0.0
    steps: int = 0
    start: float = dataclasses.field(default_factory=time.perf_counter)
    logs: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, loss_sum: float, items: float, units: float, logs: dict[str, float]) -> None:
        """Add one optimizer step's global sums."""
        self.loss += loss_sum
        self.items += items
        self.units += units
        self.steps += 1
        for k, v in logs.items():
            self.logs[k] = self.logs.get(k, 0.0) + v

    def record(self, epoch: int, lr: float, unit: str, grad_norm: float | None) -> dict[str, float]:
        """The ``train`` log record of the window: mean loss per item, ``lr``, ``{unit}_per_s``, steps/s, the task
        logs (mean per step, rank 0's values) and ``grad_norm`` when measured; ``epoch`` counts from 1."""
        seconds = max(time.perf_counter() - self.start, 1e-9)
        record = {
            "epoch": epoch,
            "loss": self.loss / max(self.items, 1.0),
            "lr": lr,
            f"{unit}_per_s": self.units / seconds,
            "steps_per_s": self.steps / seconds,
            **{k: v / self.steps for k, v in self.logs.items()},
        }
        if grad_norm is not None:
            record["grad_norm"] = grad_norm
        return record

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "start"}
