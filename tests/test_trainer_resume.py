"""Exact resumption in subprocesses: SIGKILL right after a checkpoint, and SIGTERM in the middle of a step.

The tiny task draws dropout masks and augmentation noise from every global RNG and uses shuffled batches of
uneven size, so the continuation matches bit for bit only if the trainer restores all RNG states, the data
position, the optimizer and the schedule.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _trainer_tasks import TinyRegression, config

from seq2seq_attn.training import Trainer, read_weights
from seq2seq_attn.training.checkpoint import resolve_weights

TESTS = Path(__file__).resolve().parent
SCRIPT = TESTS / "_trainer_tasks.py"


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def train_in_process(run_dir: Path, cfg: dict, resume: bool = False) -> dict:
    """A run in this process, one thread as in the subprocesses (so float results are comparable)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return Trainer(TinyRegression(), config(str(run_dir), **cfg), {"task": "tiny"}, resume=resume).fit()
    finally:
        torch.set_num_threads(threads)


CFG_A = {"eval_every": 10, "max_epochs": 3, "schedule": "noam", "warmup_steps": 5, "log_every": 3}
# mid-epoch, with accumulation, gradient clipping and worker processes doing the augmentation
CFG_B = {"accumulate": 2, "num_workers": 2, "max_epochs": 3, "save_every": 3, "clip_grad_norm": 1.0}


@pytest.fixture(scope="module")
def reference_a(tmp_path_factory) -> Path:
    """The uninterrupted run for CFG_A."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    train_in_process(run_dir, CFG_A)
    return run_dir


def losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if r["kind"] == "train"]


def assert_same_run(a: Path, b: Path) -> None:
    assert losses(a) == losses(b)  # every step's loss, bit for bit
    wa, wb = read_weights(resolve_weights(a, "latest")), read_weights(resolve_weights(b, "latest"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert json.loads((a / "best.json").read_text()) == json.loads((b / "best.json").read_text())


@pytest.mark.parametrize(("which", "kill_at"), [("a", 20), ("b", 9)], ids=["eval-every-noam", "accumulate-workers"])
def test_sigkill_after_checkpoint_then_resume_is_bit_exact(tmp_path, request, which, kill_at):
    cfg = CFG_A if which == "a" else CFG_B
    if which == "a":
        ref = request.getfixturevalue("reference_a")
    else:
        ref = tmp_path / "ref"
        train_in_process(ref, cfg)
    run = tmp_path / "run"
    killed = run_script(str(run), "--cfg", json.dumps(cfg), "--kill-at", str(kill_at))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((run / "latest.json").read_text())["step"] == kill_at
    assert losses(run)[-1][0] == kill_at - kill_at % cfg.get("log_every", 1)  # nothing logged after the kill

    summary = train_in_process(run, cfg, resume=True)  # a fresh Trainer; state comes only from the files
    assert summary["resumed_from_step"] == kill_at and summary["stopped"] == "max_epochs"
    assert_same_run(ref, run)


def test_sigterm_mid_step_checkpoints_exits_cleanly_and_resumes_exactly(tmp_path, reference_a):
    run = tmp_path / "run"
    stopped = run_script(str(run), "--cfg", json.dumps(CFG_A), "--signal-at", "23")
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "stopped by SIGTERM" in stopped.stderr and "--resume" in stopped.stderr
    # The step in progress (the 23rd) was finished and checkpointed, mid-epoch.
    assert json.loads((run / "latest.json").read_text())["step"] == 23

    train_in_process(run, CFG_A, resume=True)
    assert_same_run(reference_a, run)
