"""The Trainer's evaluation: rank 0 evaluates, every rank gets the metrics, the best value is tracked."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn

from .runtime import DistContext, preserve_rng


def evaluate_on_main(task: Any, model: nn.Module, device: torch.device, dist: DistContext, metric: str,
                     autocast: contextlib.AbstractContextManager) -> dict[str, float]:
    """``task.evaluate(model, device)`` on rank 0 (eval mode, no grad, under ``autocast``) broadcast to every
    rank. The training RNG streams are preserved, so how often a run evaluates cannot change its training.

    Raises ``ValueError`` when ``metric`` (``training.metric``) is not among the task's metrics; an error on
    rank 0 is raised there and, as ``RuntimeError``, on the other ranks (which do not wait forever).
    """
    payload: dict[str, Any] = {}
    error: BaseException | None = None
    if dist.is_main:
        try:
            with preserve_rng(), torch.no_grad(), autocast:
                model.eval()
                try:
                    payload = {k: float(v) for k, v in task.evaluate(model, device).items()}
                finally:
                    model.train()
            if metric not in payload:
                raise ValueError(f"training.metric: {metric!r} is not among the task's metrics "
                                 f"({', '.join(sorted(payload)) or 'none'})")
        except Exception as e:  # tell the other ranks before raising
            error, payload = e, {"__error__": f"{type(e).__name__}: {e}"}
    payload = dist.broadcast(payload)
    if error is not None:
        raise error
    if "__error__" in payload:
        raise RuntimeError(f"evaluation failed on rank 0: {payload['__error__']}")
    return payload


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether a finite ``value`` beats ``best`` (``None``: nothing yet) in ``mode`` ("min" or "max")."""
    if not math.isfinite(value):
        return False
    return best is None or (value < best if mode == "min" else value > best)
