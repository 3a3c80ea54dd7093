"""The ``training:`` section of every config, shared by all tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainingConfig:
    run_dir: str = "runs/default"
    seed: int = 1
    deterministic: bool = False
    device: str = "auto"  # auto -> cuda, mps, cpu
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on GPU, fp32 on CPU
    compile: bool = False
    channels_last: bool = False
    # optimization
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
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
    # evaluation and checkpoints
    eval_every: int | None = None  # optimizer steps; None = at the end of every epoch
    metric: str = "loss"
    metric_mode: Literal["min", "max"] = "min"
    patience: int | None = None  # early stopping, in evaluations
    keep_last: int = 3
    save_every: int | None = None  # optimizer steps; None = with every evaluation
    # robustness and logging
    max_nonfinite: int = 5
    log_every: int = 50
    num_workers: int = 0
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.accumulate < 1:
            raise ValueError(f"accumulate must be >= 1, got {self.accumulate}")
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {self.keep_last}")
