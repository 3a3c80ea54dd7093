"""Helpers of the vision model tests: random values for zero-initialized parameters, a tiny two-class digits
file, and the exact-resume check through ``seq2seq-attn vision train``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seq2seq_attn.cli import main


def randomize_zero_parameters(module: nn.Module, seed: int = 1) -> nn.Module:
    """Give every all-zero parameter random values (N(0, 0.25)): output scales such as Non-local's last BN or
    IAU's start at zero so that a block starts as the identity, which would hide the attention path from the
    tests (no effect on the output, no gradient to the parameters before them)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module


def bar_digits_npz(tmp_path: Path) -> Path:
    """Two classes of bars as 28x28 "digits" (1: horizontal, 0: vertical), 40 training and 10 test images."""
    rng = np.random.default_rng(0)
    x = np.zeros((50, 28, 28), dtype=np.uint8)
    y = np.arange(50) % 2
    for i, label in enumerate(y):
        if label:
            x[i, 11:17, 4:24] = rng.integers(150, 256, (6, 20))
        else:
            x[i, 4:24, 11:17] = rng.integers(150, 256, (20, 6))
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    return npz


def resumed_equals_uninterrupted(tmp_path: Path, config: Callable[[Path, str], Path], steps: int, stop: int
                                 ) -> dict[str, torch.Tensor]:
    """Train ``config(tmp_path, run)`` to ``steps`` at once ("whole") and in two parts stopped at ``stop`` and
    resumed ("parts"); assert both step-``steps`` checkpoints are equal and return the weights."""
    from safetensors.torch import load_file

    whole, parts = config(tmp_path, "whole"), config(tmp_path, "parts")
    assert main(["vision", "train", str(whole), "--set", f"training.max_steps={steps}"]) == 0
    assert main(["vision", "train", str(parts), "--set", f"training.max_steps={stop}"]) == 0
    assert main(["vision", "train", str(parts), "--resume", "--set", f"training.max_steps={steps}"]) == 0
    a = load_file(tmp_path / "whole" / "checkpoints" / f"step-{steps:06d}.safetensors")
    b = load_file(tmp_path / "parts" / "checkpoints" / f"step-{steps:06d}.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return a
