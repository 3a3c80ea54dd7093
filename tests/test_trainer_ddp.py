"""Distributed data parallel: ``torchrun --nproc_per_node=2`` on CPU (gloo) equals one process.

Batches have uneven sizes, so the two ranks see different numbers of items; the loss is normalized by the
global item count (across accumulation micro-batches too), which makes the gradients identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _trainer_tasks import TinyRegression, config

from seq2seq_attn.training import Trainer, read_weights
from seq2seq_attn.training.checkpoint import resolve_weights

TESTS = Path(__file__).resolve().parent
CFG = {"max_epochs": 2, "accumulate": 2, "optimizer": "sgd", "lr": 0.02, "eval_every": 5}


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_two_processes_match_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    Trainer(TinyRegression(dropout=0.0, augment=0.0), config(str(single), **CFG), {"task": "tiny"}).fit()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(TESTS / "_trainer_tasks.py"),
        str(multi),
        "--dropout",
        "0",
        "--augment",
        "0",
        "--cfg",
        json.dumps(CFG),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained ") == 1  # only rank 0 reports

    a, b = _records(single, "train"), _records(multi, "train")
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) == 14
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-6, abs=1e-6)
    # Evaluations (rank 0) and best checkpoints agree too.
    assert [r["mse"] for r in _records(multi, "eval")] == pytest.approx(
        [r["mse"] for r in _records(single, "eval")], rel=1e-6, abs=1e-6
    )
    wa, wb = read_weights(resolve_weights(single, "latest")), read_weights(resolve_weights(multi, "latest"))
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=1e-6)
    # Only rank 0 writes: one checkpoint set, one log.
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
