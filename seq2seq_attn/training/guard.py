"""The Trainer's non-finite guard: a step whose loss or gradients are inf/NaN is skipped, too many in a row
stop the run, and non-finite weights are never saved (the last good checkpoint stays as it was)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import read_latest
from .runtime import total_norm

_ADVICE = "Try a lower training.lr or set training.clip_grad_norm"


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses or gradients in a row, or non-finite weights about to be saved; the last
    good checkpoint was left untouched."""


def loss_and_grad_norm(loss: torch.Tensor, grads: Sequence[torch.Tensor], measure: bool) -> tuple[float, float]:
    """``(loss, total 2-norm of grads)`` as floats with one host sync per optimizer step; the norm is 0.0
    unless ``measure`` (clipping measures it anyway, fp16's GradScaler skips inf/NaN steps itself)."""
    if measure and grads:
        loss_value, norm = torch.stack([loss.float(), total_norm(grads)]).tolist()
        return loss_value, norm
    return loss.item(), 0.0


def kept_checkpoint(run_dir: Path) -> str:
    """What stays on disk after a stop: the last checkpoint written, or that there is none."""
    try:
        latest = read_latest(run_dir)
    except ValueError:  # a corrupt latest.json: say nothing about it here
        latest = None
    if latest is None:
        return f"no checkpoint written in {run_dir}"
    return f"last good checkpoint (step {latest['step']}) in {run_dir} left untouched"


class NonFiniteGuard:
    """Counts the skipped steps in a row (``count``, saved with the trainer state) for ``run_dir``; the run
    stops with :class:`NonFiniteLossError` at ``max_in_a_row``."""

    def __init__(self, max_in_a_row: int, run_dir: Path) -> None:
        self.max_in_a_row, self.run_dir = max_in_a_row, run_dir
        self.count = 0

    def passed(self) -> None:
        """A step was taken: the count starts again."""
        self.count = 0

    def skip(self, problem: str, epoch: int, step: int, log: Any) -> None:
        """Count a skipped step (``problem`` says why; ``epoch`` and ``step`` count from 0, ``step`` the steps
        taken), log a warning; raise :class:`NonFiniteLossError` at ``max_in_a_row`` without writing anything."""
        self.count += 1
        log.info(f"warning: {problem} at epoch {epoch + 1}, step {step + 1}; "
                 f"step skipped ({self.count}/{self.max_in_a_row} in a row)")
        if self.count >= self.max_in_a_row:
            raise NonFiniteLossError(
                f"{self.count} non-finite losses or gradients in a row (epoch {epoch + 1}, after step {step}; "
                f"last: {problem}); stopped, {kept_checkpoint(self.run_dir)}. {_ADVICE}"
            )

    def check_weights(self, model: nn.Module, step: int) -> None:
        """Raise :class:`NonFiniteLossError` instead of saving non-finite weights (every rank holds the same)."""
        state = model.state_dict()
        tensors = [t for t in state.values() if t.is_floating_point()]
        if not tensors or math.isfinite(float(total_norm(tensors))):
            return
        bad = [name for name, t in state.items() if t.is_floating_point() and not t.isfinite().all()]
        shown = ", ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")
        raise NonFiniteLossError(
            f"non-finite weights at step {step} ({shown}); not saved, {kept_checkpoint(self.run_dir)}. {_ADVICE}"
        )
