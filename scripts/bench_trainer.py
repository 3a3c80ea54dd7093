#!/usr/bin/env python
"""Trainer overhead: steps/s of ``Trainer.fit()`` against a minimal hand-written PyTorch loop.

Both train the same small Transformer-encoder classifier on the same synthetic token batches with the same
optimizer, for the same number of steps, end to end: build the model, train, evaluate once, save the
weights once. The two alternate within one run (hand, trainer, trainer, hand, ...) so that load on the
machine affects both alike; the figure is the ratio of the median steps/s (goal: >= 0.97), by wall-clock
time and by the process's CPU time (the latter is what to trust on a shared, oversubscribed CPU), and in
steady state (training steps after the first 50 only, without setup, evaluation and checkpoint writing).

    python scripts/bench_trainer.py --device cpu --steps 600 --rounds 4
    python scripts/bench_trainer.py --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.timing import sync
from seq2seq_attn.training import StepOutput, Trainer, TrainingConfig
from seq2seq_attn.training.runtime import move_to_device, resolve_device


class TokenClassifier(nn.Module):
    def __init__(self, vocab: int, d_model: int, layers: int, heads: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(tokens))  # (batch, seq, d_model)
        return self.out(h.mean(dim=1))  # (batch, classes)


class BenchTask:
    """Synthetic sequence classification: the label is the most frequent token class of the sequence."""

    unit = "tok"

    def __init__(self, steps: int, batch: int, seq: int, vocab: int, d_model: int, layers: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, vocab, (steps * batch, seq), generator=g)
        self.labels = (self.tokens % 4).mode(dim=1).values
        self.val = torch.randint(0, vocab, (256, seq), generator=g)
        self.val_labels = (self.val % 4).mode(dim=1).values
        self.steps, self.batch, self.seed = steps, batch, seed
        self.dims = (vocab, d_model, layers, max(1, d_model // 32), 4)

    def build_model(self) -> nn.Module:
        return TokenClassifier(*self.dims)

    def train_batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.steps * self.batch).tolist()
        return [order[i : i + self.batch] for i in range(0, len(order), self.batch)]

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[indices], self.labels[indices]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
        tokens, labels = batch
        loss_sum = F.cross_entropy(model(tokens).float(), labels, reduction="sum")
        return StepOutput(loss_sum, labels.numel(), tokens.numel())

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        pred = model(self.val.to(device)).argmax(-1).cpu()
        return {"acc": float((pred == self.val_labels).float().mean())}


@dataclass
class Rate:
    wall: float  # steps per second of wall-clock time, end to end
    cpu: float  # steps per second of this process's CPU time (robust on a shared, loaded CPU)
    steady: float = 0.0  # steps per second (wall) after the first WINDOW steps, training loop only


WINDOW = 50  # the trainer's log_every: its steady rate comes from metrics.jsonl windows after the first


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, steps: int, steady: float = 0.0) -> Rate:
        return Rate(steps / (time.perf_counter() - self.wall), steps / (time.process_time() - self.cpu), steady)


def hand_loop(task: BenchTask, device: torch.device, amp: torch.dtype | None, lr: float, out: Path) -> Rate:
    """The minimal loop a person would write: same model, batches, optimizer, one eval and one save."""
    sync(device)
    clock = Clock()
    torch.manual_seed(1)
    model = task.build_model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cuda = device.type == "cuda"
    for step, indices in enumerate(task.train_batches(0), start=1):
        batch = move_to_device(task.collate(indices), device, non_blocking=cuda)
        with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
            out_ = task.loss(model, batch)
        (out_.loss_sum / out_.num_items).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        last = out_.loss_sum.item()  # a loop logs its loss; this is also the per-step sync the trainer has
        if step == WINDOW:
            steady_start = time.perf_counter()
    steady = (task.steps - WINDOW) / (time.perf_counter() - steady_start)
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
        task.evaluate(model, device)
    torch.save(model.state_dict(), out / "hand.pt")
    sync(device)
    assert np.isfinite(last)
    return clock.rate(task.steps, steady)


def trainer_run(task: BenchTask, device: torch.device, precision: str, lr: float, out: Path) -> Rate:
    cfg = TrainingConfig(
        run_dir=str(out / "trainer"),
        seed=1,
        device=str(device),
        precision=precision,
        lr=lr,
        max_epochs=1,
        metric="acc",
        metric_mode="max",
        log_every=WINDOW,
        keep_last=1,
    )
    sync(device)
    clock = Clock()
    summary = Trainer(task, cfg, overwrite=True).fit()
    sync(device)
    assert summary["steps"] == task.steps
    rate = clock.rate(task.steps)
    lines = (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()
    windows = [r["steps_per_s"] for r in map(json.loads, lines) if r["kind"] == "train"][1:]
    rate.steady = len(windows) * WINDOW / sum(WINDOW / w for w in windows)
    return rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    if args.precision == "fp16":
        print("note: the hand loop has no GradScaler; compare bf16 or fp32", file=sys.stderr)
    task = BenchTask(args.steps, args.batch, args.seq, 1000, args.d_model, args.layers)
    lr = 1e-3
    hand, trainer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        trainer_run(task, device, args.precision, lr, out)  # warm-up (allocator, kernels), not counted
        hand_loop(task, device, amp, lr, out)
        for r in range(args.rounds):
            # Which one goes first alternates too, so neither profits from its place in the round.
            for side in ("hand", "trainer") if r % 2 == 0 else ("trainer", "hand"):
                if side == "hand":
                    hand.append(hand_loop(task, device, amp, lr, out))
                else:
                    trainer.append(trainer_run(task, device, args.precision, lr, out))
            print(f"round {r + 1}: hand {hand[-1]}, trainer {trainer[-1]}", file=sys.stderr)
    print(
        f"device {device}, {args.precision}, {args.steps} steps x {args.rounds} rounds, batch {args.batch}x{args.seq}, "
        f"d_model {args.d_model}, {args.layers} layers, {torch.get_num_threads()} threads"
    )
    for kind in ("wall", "cpu", "steady"):
        h = statistics.median(getattr(r, kind) for r in hand)
        t = statistics.median(getattr(r, kind) for r in trainer)
        ratios = [getattr(a, kind) / getattr(b, kind) for a, b in zip(trainer, hand)]
        rounds = ", ".join(f"{x:.3f}" for x in ratios)
        # Over rounds with either side first, the geometric mean of the ratios cancels order effects.
        balanced = statistics.geometric_mean(ratios)
        print(
            f"{kind:>6}: hand-written loop {h:.2f} steps/s, Trainer.fit() {t:.2f} steps/s (medians); "
            f"ratio {t / h:.3f}; per round {rounds} (geometric mean {balanced:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
