"""The Trainer in-process: a full run, checkpoints, best weights, load_weights, run-dir rules."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from _trainer_tasks import TinyRegression, config

from seq2seq_attn.training import Trainer, load_weights, read_weights


def _records(run_dir, kind="train"):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_fit_trains_checkpoints_and_loads_best(tmp_path):
    run = tmp_path / "run"
    task = TinyRegression()
    trainer = Trainer(task, config(str(run), max_epochs=3, keep_last=2), {"task": "tiny"})
    summary = trainer.fit()

    assert summary["stopped"] == "max_epochs" and summary["epochs"] == 3
    batches_per_epoch = len(task.train_batches(0))
    assert summary["steps"] == 3 * batches_per_epoch
    evals = _records(run, "eval")
    assert [e["step"] for e in evals] == [batches_per_epoch * k for k in (1, 2, 3)]
    assert evals[-1]["mse"] < evals[0]["mse"]  # it learns
    # keep_last=2: only the two newest pairs remain; latest.json names the newest.
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    steps = [batches_per_epoch * 2, batches_per_epoch * 3]
    assert names == sorted(f"step-{s:06d}.{ext}" for s in steps for ext in ("safetensors", "state.pt"))
    assert json.loads((run / "latest.json").read_text())["step"] == steps[-1]
    best = json.loads((run / "best.json").read_text())
    assert best["value"] == min(e["mse"] for e in evals) == summary["best_value"]
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()

    # The latest checkpoint holds the final weights; load_weights restores them into a fresh model.
    final = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    fresh = task.build_model()
    assert load_weights(fresh, run, which="latest").name == f"step-{steps[-1]:06d}.safetensors"
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, final[k]), k
    assert load_weights(fresh, run, which="best") == run / "best.safetensors"
    assert set(read_weights(run / "best.safetensors")) == set(final)


def test_sigint_finishes_the_step_checkpoints_and_resume_continues_exactly(tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    ref = Trainer(TinyRegression(), config(str(tmp_path / "ref"), max_epochs=2), {"task": "tiny"})
    ref.fit()
    stopped = Trainer(
        TinyRegression(signal_at=5, signal_num=signal.SIGINT),
        config(str(tmp_path / "run"), max_epochs=2),
        {"task": "tiny"},
    )
    summary = stopped.fit()
    assert summary["stopped"] == "signal" and summary["signal"] == "SIGINT" and summary["steps"] == 5
    assert signal.getsignal(signal.SIGINT) is handler  # the trainer's handler is gone again
    assert json.loads((tmp_path / "run" / "latest.json").read_text())["step"] == 5
    assert "stopped by SIGINT" in (tmp_path / "run" / "train.log").read_text()

    resumed = Trainer(TinyRegression(), config(str(tmp_path / "run"), max_epochs=2), {"task": "tiny"}, resume=True)
    assert resumed.fit()["resumed_from_step"] == 5
    losses = [(r["step"], r["loss"]) for r in _records(tmp_path / "run")]
    assert losses == [(r["step"], r["loss"]) for r in _records(tmp_path / "ref")]
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_resume_warns_about_changed_settings_outside_model_and_training(tmp_path):
    Trainer(TinyRegression(), config(str(tmp_path / "run"), max_epochs=1), {"task": "tiny"}).fit()
    with pytest.warns(UserWarning, match=r"resuming with changed settings: task \('tiny' -> 'tiny2'\)"):
        Trainer(TinyRegression(), config(str(tmp_path / "run"), max_epochs=1), {"task": "tiny2"}, resume=True).fit()


def test_cpu_threads_is_applied_by_the_trainer(tmp_path):
    # Two runs side by side with cpu_threads: 1 each must not both run torch's default thread pool.
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        Trainer(TinyRegression(), config(str(tmp_path / "a"), cpu_threads=2))
        assert torch.get_num_threads() == 2
        Trainer(TinyRegression(), config(str(tmp_path / "b"), cpu_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cpu_threads_block_restores_the_callers_setting():
    from seq2seq_attn.training.config import cpu_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with cpu_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
        with cpu_threads(None):  # null: torch's setting stays
            assert torch.get_num_threads() == 1
        with pytest.raises(KeyError), cpu_threads(2):
            raise KeyError("restored on errors too")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
