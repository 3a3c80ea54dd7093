"""The interface between a task (translation, classification, vision) and the one ``Trainer``.

A task owns its data, model and loss; the trainer owns devices, precision, optimization, checkpoints,
distribution and logging. Batches are described by lists of example indices so that the trainer can
shard a global batch across ranks and record its exact position in an epoch for resumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class StepOutput:
    """What ``Task.loss`` returns for one (local) batch.

    ``loss_sum`` is the loss summed over ``num_items`` items (tokens, sentences or images); the trainer
    divides by the global item count, so sharded and accumulated batches give the same gradient as one
    big batch. ``num_units`` counts what throughput is reported in (tokens or images).
    """

    loss_sum: torch.Tensor
    num_items: int
    num_units: int
    logs: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    #: Name of the throughput unit ("tok", "img", "doc").
    unit: str

    def build_model(self) -> nn.Module:
        """A fresh model (on CPU); the trainer moves and wraps it."""

    def train_batches(self, epoch: int) -> Sequence[Sequence[int]]:
        """The epoch's global batches as lists of example indices; deterministic given (seed, epoch)."""

    def collate(self, indices: Sequence[int]) -> Any:
        """Turn example indices into a batch (tensors on CPU; the trainer moves them)."""

    def loss(self, model: nn.Module, batch: Any) -> StepOutput:
        """Forward pass and summed loss for one batch already on the model's device.

        Call ``model(...)`` (its forward) only: under distributed training ``model`` is wrapped in
        DistributedDataParallel (and under ``training.compile`` compiled), and only forward synchronizes.
        """

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Validation metrics (computed by rank 0 on the unwrapped model, in eval mode, no grad)."""


# Optional members a task may add (the Trainer looks them up with getattr):
#
# - ``resume_keys: tuple[str, ...]``: dotted config keys or sections outside ``model`` and ``training`` whose
#   change would change the meaning of the saved weights (vocabularies, label sets, normalization); a
#   ``--resume`` with any of them changed is refused, naming the key.
# - ``write_run_files(run_dir: Path) -> None``: write the task's own files (subword models, vocabulary,
#   labels) into the run dir. Called on rank 0 after every check has passed and ``config.yaml`` is written,
#   so a run that is refused, or fails while loading its data, leaves nothing behind.
