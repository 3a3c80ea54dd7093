"""Translation on the memory-mapped corpus under ``torchrun`` (issue 18): two processes on one machine, started
with the rendezvous flags of a multi-node run (``--nnodes``, ``--node_rank``, ``--rdzv_backend c10d``,
``--rdzv_endpoint``), train exactly as one process does: same losses, same weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_translation_cli import tiny_corpus

from seq2seq_attn.cli import main
from seq2seq_attn.training import read_weights
from seq2seq_attn.training.checkpoint import resolve_weights


def _config(tmp_path: Path, run_dir: Path) -> Path:
    src, tgt = tiny_corpus(tmp_path)
    cfg = {
        "data": {"train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)},
                 "vocab_size": 60, "spm_type": "bpe", "batch_mode": "sentences", "batch_size": 7,
                 "cache_dir": str(tmp_path / "cache"), "dev_bleu_sentences": 2},
        "model": {"arch": "rnn", "rnn": {"emb_dim": 16, "enc_hidden": 16, "dec_hidden": 32, "dropout": 0.0}},
        "label_smoothing": 0.1,
        "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1, "optimizer": "sgd", "lr": 0.1,
                     "max_steps": 6, "eval_every": 3, "log_every": 1, "progress": False},
    }
    path = tmp_path / f"{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _losses(run_dir: Path) -> list[float]:
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [r["loss"] for r in records if r["kind"] == "train"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_rendezvous_two_processes_match_one_on_the_memory_map(tmp_path: Path) -> None:
    single, multi = tmp_path / "single", tmp_path / "ddp"
    assert main(["train", str(_config(tmp_path, single))]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--node_rank=0", "--nproc_per_node=2",
           "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=issue18", "-m", "seq2seq_attn",
           "train", str(_config(tmp_path, multi))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("from the cache") == 2 and "encoded" not in proc.stdout  # both ranks: the cache
    a, b = _losses(single), _losses(multi)
    assert len(a) == 6 and b == pytest.approx(a, rel=1e-5, abs=1e-6)
    wa, wb = read_weights(resolve_weights(single, "latest")), read_weights(resolve_weights(multi, "latest"))
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=1e-5)


def test_resume_on_the_memory_map_repeats_the_uninterrupted_run(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", str(_config(tmp_path, straight))]) == 0
    config = _config(tmp_path, resumed)
    assert main(["train", str(config), "--set", "training.max_steps=5"]) == 0  # stops inside the second epoch
    assert main(["train", str(config), "--resume"]) == 0
    assert _losses(resumed) == _losses(straight) and len(_losses(straight)) == 6
    wa, wb = read_weights(resolve_weights(straight, "latest")), read_weights(resolve_weights(resumed, "latest"))
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=0)
