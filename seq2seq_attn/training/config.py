"""The ``training:`` section of every config, shared by all tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

_OPTIMIZERS = ("adam", "adamw", "sgd")
_SCHEDULES = ("constant", "noam", "cosine", "step", "plateau")
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainingConfig:
    run_dir: str = "runs/default"
    seed: int = 1
    deterministic: bool = False
    device: str = "auto"  # auto -> cuda, mps, cpu; or "cpu", "cuda", "cuda:1", "mps"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on GPU, fp32 on CPU
    compile: bool = False
    channels_last: bool = False
    # optimization
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    # learning-rate multipliers by module name, e.g. {locator: 10}: the parameters under that dotted prefix
    # train at lr x 10 through every schedule (the longest matching prefix wins; each must match a parameter)
    lr_scale: dict[str, float] = field(default_factory=dict)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0  # never applied to biases and norm weights (parameters with ndim <= 1)
    accumulate: int = 1
    clip_grad_norm: float | None = None
    # schedule
    schedule: Literal["constant", "noam", "cosine", "step", "plateau"] = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    step_size: int = 1000  # step schedule: decay every N optimizer steps
    gamma: float = 0.1  # step / plateau decay factor
    plateau_patience: int = 2  # evaluations without improvement before decaying
    # length
    max_epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget; stops after the step that crosses it
    # weights to start a new run from: a run dir (its best weights, else its latest) or a .safetensors file of
    # the same model (fine-tuning, curricula); the optimizer and schedule start afresh; unused when resuming
    init_from: str | None = None
    # evaluation and checkpoints
    eval_every: int | None = None  # optimizer steps; None = at the end of every epoch
    metric: str = "loss"
    metric_mode: Literal["min", "max"] = "min"
    patience: int | None = None  # early stopping, in evaluations
    keep_last: int = 3
    save_every: int | None = None  # optimizer steps; None = with every evaluation
    # robustness and logging
    max_nonfinite: int = 5  # non-finite losses in a row before the run stops with an error
    log_every: int = 50  # optimizer steps between lines in metrics.jsonl / train.log
    num_workers: int = 0
    # torch.set_num_threads for CPU work (null: torch's default); small models and step-by-step RNN decoders
    # often run fastest on one thread
    cpu_threads: int | None = None
    tensorboard: bool = True  # used when the tensorboard package is installed
    progress: bool = True  # tqdm bar per epoch (rank 0)
    ddp_find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0, "lr", "> 0"),
            (self.accumulate >= 1, "accumulate", ">= 1"),
            (self.max_epochs >= 1, "max_epochs", ">= 1"),
            (self.keep_last >= 1, "keep_last", ">= 1"),
            (self.warmup_steps >= 0, "warmup_steps", ">= 0"),
            (self.min_lr >= 0, "min_lr", ">= 0"),
            (self.min_lr <= self.lr, "min_lr", f"<= lr ({self.lr})"),
            (self.step_size >= 1, "step_size", ">= 1"),
            (0 < self.gamma <= 1, "gamma", "in (0, 1]"),
            (self.plateau_patience >= 0, "plateau_patience", ">= 0"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (self.momentum >= 0, "momentum", ">= 0"),
            (all(0 <= b < 1 for b in self.betas), "betas", "in [0, 1)"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", ">= 1 or null"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes", "> 0 or null"),
            (self.eval_every is None or self.eval_every >= 1, "eval_every", ">= 1 or null"),
            (self.save_every is None or self.save_every >= 1, "save_every", ">= 1 or null"),
            (self.patience is None or self.patience >= 1, "patience", ">= 1 or null"),
            (self.clip_grad_norm is None or self.clip_grad_norm > 0, "clip_grad_norm", "> 0 or null"),
            (self.max_nonfinite >= 1, "max_nonfinite", ">= 1"),
            (self.log_every >= 1, "log_every", ">= 1"),
            (self.num_workers >= 0, "num_workers", ">= 0"),
            (self.cpu_threads is None or self.cpu_threads >= 1, "cpu_threads", ">= 1 or null"),
            (self.optimizer in _OPTIMIZERS, "optimizer", f"one of {', '.join(_OPTIMIZERS)}"),
            (self.schedule in _SCHEDULES, "schedule", f"one of {', '.join(_SCHEDULES)}"),
            (self.precision in _PRECISIONS, "precision", f"one of {', '.join(_PRECISIONS)}"),
            (self.metric_mode in ("min", "max"), "metric_mode", "'min' or 'max'"),
            (not (self.nesterov and self.momentum == 0), "nesterov", "used with momentum > 0"),
            (bool(self.metric), "metric", "a metric name"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"{key} must be {expected}, got {getattr(self, key)!r}")
        for prefix, scale in self.lr_scale.items():
            if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
                raise ValueError(f"lr_scale.{prefix} must be a number > 0, got {scale!r}")
        if self.schedule == "noam" and self.warmup_steps < 1:
            raise ValueError("warmup_steps must be >= 1 for the noam schedule, got 0")

    def apply_cpu_threads(self) -> None:
        """``torch.set_num_threads(cpu_threads)`` when set, so two runs side by side with one thread each do not
        oversubscribe. Commands reach it through ``training.lifecycle.load_task_config`` (every task's train and
        load_run); the Trainer calls it again for library callers."""
        if self.cpu_threads is not None:
            import torch

            torch.set_num_threads(self.cpu_threads)


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` inside the block (nothing when None), the previous count after it:
    for library code, such as ``vision compare``, that must leave the caller's setting as it found it."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
