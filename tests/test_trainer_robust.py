"""Bad input and bad luck: non-finite losses, corrupt or foreign checkpoints, occupied run dirs, bad configs.

Each error is one clear line naming the file, tensor or key, and leaves the disk as it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from _trainer_tasks import TinyRegression, config

from seq2seq_attn.config import ConfigError, from_dict
from seq2seq_attn.training import (
    CheckpointError,
    NonFiniteLossError,
    Trainer,
    TrainingConfig,
    load_weights,
    read_weights,
    run_training,
)
from seq2seq_attn.training.checkpoint import atomic_write, checkpoint_paths


@dataclass
class _Wrapper:
    """A top-level config with a training section, as tasks declare them."""

    training: TrainingConfig = field(default_factory=TrainingConfig)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fit(run_dir: Path, task: TinyRegression | None = None, resume: bool = False, overwrite: bool = False, **cfg):
    trainer = Trainer(
        task or TinyRegression(), config(str(run_dir), **cfg), {"task": "tiny"}, resume=resume, overwrite=overwrite
    )
    return trainer, trainer.fit()


def test_single_nonfinite_loss_skips_the_step_and_training_goes_on(tmp_path):
    trainer, summary = fit(tmp_path / "run", TinyRegression(nan_calls={4}), max_epochs=1)
    batches = len(TinyRegression().train_batches(0))
    assert summary["steps"] == batches - 1  # the poisoned step was not taken
    assert "non-finite loss" in (tmp_path / "run" / "train.log").read_text()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_nonfinite_gradients_with_a_finite_loss_skip_the_step(tmp_path):
    task = TinyRegression(nan_grad_calls={3})
    trainer, summary = fit(tmp_path / "run", task, max_epochs=1, clip_grad_norm=1.0)
    assert summary["steps"] == len(task.train_batches(0)) - 1
    assert "non-finite gradient norm (nan)" in (tmp_path / "run" / "train.log").read_text()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_repeated_nonfinite_losses_stop_and_keep_last_good_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    task = TinyRegression(nan_calls=range(13, 1000))
    expected = r"3 non-finite losses or gradients in a row .*last good checkpoint \(step 10\) in .* left untouched"
    with pytest.raises(NonFiniteLossError, match=expected):
        fit(run, task, save_every=5, eval_every=5, max_nonfinite=3)
    latest = json.loads((run / "latest.json").read_text())
    assert latest["step"] == 10  # the checkpoint before the NaNs; none written after
    assert [p.name for p in (run / "checkpoints").iterdir() if "000015" in p.name] == []
    fresh = task.build_model()
    load_weights(fresh, run, which="latest")
    assert all(torch.isfinite(p).all() for p in fresh.parameters())
    # Through the CLI helper: a one-line error and exit code 1.
    code = run_training(TinyRegression(nan_calls=range(1, 1000)), config(str(tmp_path / "cli"), max_nonfinite=2))
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: 2 non-finite losses or gradients in a row") and "no checkpoint written" in err


@pytest.mark.parametrize("damage", ["truncate-weights", "garbage-state"])
def test_corrupt_checkpoint_on_resume_names_the_file_and_changes_nothing(tmp_path, damage):
    run = tmp_path / "run"
    fit(run, max_epochs=1)
    step = json.loads((run / "latest.json").read_text())["step"]
    weights, state = checkpoint_paths(run, step)
    if damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[:100])
        bad = weights
    else:
        state.write_bytes(b"not a torch file")
        bad = state
    before = snapshot(run)
    with pytest.raises(CheckpointError) as err:
        fit(run, resume=True, max_epochs=2)
    message = str(err.value)
    assert str(bad) in message and "corrupt or truncated" in message and "\n" not in message
    assert snapshot(run) == before


def test_checkpoint_from_another_model_names_the_tensors(tmp_path):
    run = tmp_path / "run"
    fit(run, max_epochs=1)
    other = TinyRegression(hidden=8).build_model()
    before = [p.clone() for p in other.parameters()]
    with pytest.raises(CheckpointError) as err:
        load_weights(other, run)
    message = str(err.value)
    assert "best.safetensors" in message and "\n" not in message
    assert "0.weight (16, 6) vs model (8, 6)" in message and "3.weight (1, 16) vs model (1, 8)" in message
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))  # model untouched
    # Resuming a run with a different model is refused the same way, before anything is written.
    before_disk = snapshot(run)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        fit(run, TinyRegression(hidden=8), resume=True, max_epochs=2)
    assert snapshot(run) == before_disk


def test_run_dir_with_another_run_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    fit(run, max_epochs=1)
    before = snapshot(run)
    with pytest.raises(ValueError, match="already holds a run .*--resume.*--overwrite") as err:
        fit(run, max_epochs=1)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"different config: training.lr \(0.01 -> 0.02\)"):
        fit(run, resume=True, lr=0.02)
    with pytest.raises(ValueError, match="exclude each other"):
        fit(run, resume=True, overwrite=True)
    assert snapshot(run) == before
    # --overwrite starts over: the old checkpoints and metrics are gone, other files stay.
    (run / "notes.txt").write_text("mine")
    _, summary = fit(run, overwrite=True, max_epochs=1, keep_last=1)
    assert summary["resumed_from_step"] is None
    assert len(list((run / "checkpoints").iterdir())) == 2 and (run / "notes.txt").read_text() == "mine"
    # Resuming with a larger max_epochs is allowed and continues where the run stopped.
    _, summary = fit(run, resume=True, max_epochs=2, keep_last=1)
    batches = len(TinyRegression().train_batches(0))
    assert summary["resumed_from_step"] == batches and summary["steps"] == 2 * batches


def test_bad_config_values_are_one_line_errors_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^cfg.yaml: training: lr must be > 0, got -0.1$"):
        from_dict(_Wrapper, {"training": {"lr": -0.1}}, "cfg.yaml")
    with pytest.raises(ConfigError, match=r"training.schedule: expected one of"):
        from_dict(_Wrapper, {"training": {"schedule": "linear"}}, "cfg.yaml")
    with pytest.raises(ValueError, match="warmup_steps must be >= 1 for the noam schedule"):
        TrainingConfig(schedule="noam")
    with pytest.raises(ValueError, match="patience must be >= 1"):
        TrainingConfig(patience=0)
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="training.device: unknown device 'tpu'"):
        fit(run, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fit(run, device="cuda")
    assert not run.exists()  # nothing was created
    with pytest.raises(ValueError, match="training.metric: 'bleu' is not among the task's metrics \\(mse\\)"):
        fit(run, metric="bleu")


def test_atomic_write_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "latest.json"
    target.write_text("old")

    def crash(fh):
        fh.write(b"half of the new con")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]  # no temp file left behind


def test_init_from_starts_a_new_run_from_another_runs_weights_and_names_the_key_when_it_cannot(tmp_path):
    source = tmp_path / "source"
    fit(source, max_epochs=1)
    want = load_weights(TinyRegression().build_model(), source)  # the file init_from takes: best weights
    best = {k: v.clone() for k, v in _best(source).items()}
    for i, start in enumerate([source, want]):  # a run dir or a weights file
        run = tmp_path / f"run{i}"
        fit(run, max_epochs=1, optimizer="sgd", lr=1e-12, init_from=str(start))
        assert f"initialized from {want}" in (run / "train.log").read_text()
        for k, v in _best(run).items():  # a learning rate of 1e-12 leaves the loaded weights where they were
            torch.testing.assert_close(v, best[k], rtol=1e-6, atol=1e-9)
    fit(tmp_path / "fresh", max_epochs=1, optimizer="sgd", lr=1e-12)
    assert any(not torch.allclose(v, best[k]) for k, v in _best(tmp_path / "fresh").items())  # a new start differs
    for source_path, error, message in [
        (tmp_path / "nowhere", FileNotFoundError, "training.init_from: .*nowhere: no such run dir or weights file"),
        (tmp_path, FileNotFoundError, "training.init_from: .*no checkpoint found"),  # a dir without weights
    ]:
        with pytest.raises(error, match=message):
            fit(tmp_path / "bad", max_epochs=1, init_from=str(source_path))
        assert not (tmp_path / "bad" / "config.yaml").exists()  # nothing written
    with pytest.raises(CheckpointError, match="0.weight \\(16, 6\\) vs model \\(8, 6\\)"):
        fit(tmp_path / "bad", TinyRegression(hidden=8), max_epochs=1, init_from=str(source))


def _best(run: Path) -> dict[str, torch.Tensor]:
    return read_weights(run / "best.safetensors")
