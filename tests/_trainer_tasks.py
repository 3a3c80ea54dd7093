"""A tiny regression task for the trainer's tests, runnable as a script for subprocess tests.

The task has everything that makes exact resumption hard: shuffled, uneven batches (a different number of
items per batch and per rank), dropout (torch RNG in the forward pass) and random augmentation noise drawn
in ``collate`` (torch, NumPy and Python RNGs). Run as a script (also under ``torchrun``) it trains and can
kill itself with SIGKILL right after a chosen checkpoint, or send itself SIGTERM in the middle of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from seq2seq_attn.training import StepOutput, Trainer, TrainingConfig, run_training


@dataclass
class Batch:
    x: torch.Tensor  # (batch, dim)
    y: torch.Tensor  # (batch,)


class TinyRegression:
    """y = x . w + noise, fitted by a small MLP; metric "mse" on a fixed validation set."""

    unit = "ex"

    def __init__(
        self,
        n: int = 96,
        dim: int = 6,
        hidden: int = 16,
        dropout: float = 0.1,
        augment: float = 0.05,
        seed: int = 0,
        nan_calls: Collection[int] = (),
        nan_grad_calls: Collection[int] = (),
        signal_at: int | None = None,
        signal_num: int = signal.SIGTERM,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=g)
        self.w = torch.randn(dim, generator=g)
        self.y = self.x @ self.w + 0.1 * torch.randn(n, generator=g)
        self.val_x = torch.randn(32, dim, generator=g)
        self.val_y = self.val_x @ self.w
        self.dim, self.hidden, self.dropout, self.augment, self.seed = dim, hidden, dropout, augment, seed
        self.nan_calls = set(nan_calls)  # loss() calls (1-based) whose loss is NaN
        self.nan_grad_calls = set(nan_grad_calls)  # loss() calls with a finite loss but NaN gradients
        self.signal_at = signal_at  # loss() call during which the process sends itself `signal_num`
        self.signal_num = signal_num
        self.calls = 0

    def build_model(self) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.dim, self.hidden), nn.ReLU(), nn.Dropout(self.dropout), nn.Linear(self.hidden, 1)
        )

    def train_batches(self, epoch: int) -> list[list[int]]:
        # Deterministic in (seed, epoch); uneven sizes 5..9 so item counts differ per batch and per rank.
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.x)).tolist()
        sizes = [5, 7, 9, 6, 8]
        batches, i, k = [], 0, 0
        while i < len(order):
            batches.append(order[i : i + sizes[k % len(sizes)]])
            i += sizes[k % len(sizes)]
            k += 1
        return batches

    def collate(self, indices: Sequence[int]) -> Batch:
        x = self.x[list(indices)].clone()
        if self.augment:
            # Draw from all three global RNGs, as real augmentations do.
            scale = self.augment * (1.0 + 0.1 * random.random()) * (1.0 + 0.1 * float(np.random.rand()))
            x = x + scale * torch.randn_like(x)
        return Batch(x, self.y[list(indices)])

    def loss(self, model: nn.Module, batch: Batch) -> StepOutput:
        self.calls += 1
        if self.signal_at is not None and self.calls == self.signal_at:
            os.kill(os.getpid(), self.signal_num)  # arrives in the middle of this step
        pred = model(batch.x).squeeze(-1)  # (batch,)
        loss_sum = ((pred - batch.y) ** 2).sum()
        if self.calls in self.nan_calls:
            loss_sum = loss_sum * float("nan")
        if self.calls in self.nan_grad_calls:
            loss_sum = loss_sum + (pred * 0).sum().sqrt()  # adds 0; its gradient is 0 * inf = NaN
        return StepOutput(loss_sum, len(batch.y), len(batch.y), {"pred_mean": float(pred.detach().mean())})

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        pred = model(self.val_x.to(device)).squeeze(-1)
        return {"mse": float(((pred - self.val_y.to(device)) ** 2).mean())}


def config(run_dir: str, **overrides) -> TrainingConfig:
    base = dict(run_dir=run_dir, lr=0.01, max_epochs=3, metric="mse", log_every=1, progress=False, seed=3)
    base.update(overrides)
    return TrainingConfig(**base)


class KillAfterCheckpoint(Trainer):
    """Dies with SIGKILL right after the checkpoint of step ``kill_at`` is on disk."""

    kill_at: int | None = None

    def _save(self) -> None:
        super()._save()
        if self.kill_at is not None and self.step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-at", type=int, default=None)
    p.add_argument("--signal-at", type=int, default=None, help="loss() call that sends SIGTERM")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--augment", type=float, default=0.05)
    p.add_argument("--cfg", default="{}", help="JSON of TrainingConfig overrides")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    task = TinyRegression(dropout=args.dropout, augment=args.augment, signal_at=args.signal_at)
    cfg = config(args.run_dir, **json.loads(args.cfg))
    if args.kill_at is not None:
        trainer = KillAfterCheckpoint(task, cfg, {"task": "tiny"}, resume=args.resume)
        trainer.kill_at = args.kill_at
        trainer.fit()
        return 0
    return run_training(task, cfg, {"task": "tiny"}, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
