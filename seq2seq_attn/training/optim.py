"""Optimizers and learning-rate schedules chosen by the ``training:`` config.

The schedules are pure functions of the optimizer step (plus a small state for reduce-on-plateau), so a
resumed run continues with exactly the learning rate it would have had. "noam" is the linear warmup +
inverse square root schedule of Vaswani et al. (2017), "Attention Is All You Need", section 5.3, with its
peak at ``lr`` after ``warmup_steps``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainingConfig

_WRAPPERS = ("module.", "_orig_mod.")  # DDP's and torch.compile's prefixes on parameter names


def _unwrapped(name: str) -> str:
    while name.startswith(_WRAPPERS):
        name = name.split(".", 1)[1]
    return name


def _scale_of(name: str, lr_scale: dict[str, float]) -> tuple[str | None, float]:
    """The longest ``lr_scale`` prefix that names ``name`` or a module above it, and its multiplier."""
    name, best = _unwrapped(name), None
    for prefix in lr_scale:
        if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best, (1.0 if best is None else float(lr_scale[best]))


def param_groups(model: nn.Module, weight_decay: float, lr_scale: dict[str, float] | None = None) -> list[dict]:
    """Weights with decay; biases and norm weights (ndim <= 1) without, as in timm and BERT; each split again by
    learning-rate multiplier (``lr_scale``: module-name prefix -> factor, the longest matching prefix wins), kept
    in the group as ``lr_scale`` for :class:`Schedule`.

    Raises:
        ValueError: an ``lr_scale`` prefix that names no trainable parameter.
    """
    lr_scale = lr_scale or {}
    groups: dict[tuple[bool, float], list] = {}
    used = set()
    for name, p in model.named_parameters():
        if p.requires_grad:
            prefix, scale = _scale_of(name, lr_scale)
            used.add(prefix)
            groups.setdefault((p.ndim > 1, scale), []).append(p)
    unused = sorted(set(lr_scale) - used)
    if unused:
        tops = sorted({_unwrapped(n).split(".")[0] for n, _ in model.named_parameters()})
        raise ValueError(f"training.lr_scale.{unused[0]}: no trainable parameter of the model is named so "
                         f"(a module name, e.g. one of {tops})")
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
            for (decay, scale), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.lr_scale)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    raise ValueError(f"training.optimizer: unknown optimizer {cfg.optimizer!r}")


class Schedule:
    """Learning rate for each optimizer step: ``lr * factor(step)``, floored at ``min_lr`` where it decays."""

    def __init__(self, cfg: TrainingConfig, total_steps: int) -> None:
        self.cfg = cfg
        self.total_steps = max(1, total_steps)
        self.plateau_factor = 1.0  # reduce-on-plateau state
        self.plateau_best: float | None = None
        self.plateau_bad = 0

    def lr(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (1-based)."""
        c = self.cfg
        warm = c.warmup_steps
        if c.schedule == "noam":
            return c.lr * min(step / warm, math.sqrt(warm / step))
        if warm and step <= warm:
            return c.lr * step / warm
        if c.schedule == "constant":
            return c.lr
        if c.schedule == "cosine":
            progress = min(1.0, (step - warm) / max(1, self.total_steps - warm))
            return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if c.schedule == "step":
            return max(c.min_lr, c.lr * c.gamma ** ((step - warm) // c.step_size))
        if c.schedule == "plateau":
            return max(c.min_lr, c.lr * self.plateau_factor)
        raise ValueError(f"training.schedule: unknown schedule {c.schedule!r}")

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def on_evaluation(self, value: float) -> None:
        """Reduce-on-plateau: decay after ``plateau_patience`` evaluations without improvement."""
        if self.cfg.schedule != "plateau":
            return
        better = self.plateau_best is None or (
            value < self.plateau_best if self.cfg.metric_mode == "min" else value > self.plateau_best
        )
        if better:
            self.plateau_best, self.plateau_bad = value, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad > self.cfg.plateau_patience:
            self.plateau_factor *= self.cfg.gamma
            self.plateau_bad = 0

    def state_dict(self) -> dict:
        return {"factor": self.plateau_factor, "best": self.plateau_best, "bad": self.plateau_bad}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_factor, self.plateau_best, self.plateau_bad = state["factor"], state["best"], state["bad"]
