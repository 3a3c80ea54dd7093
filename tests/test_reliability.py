"""Issue 12: every bad input gets a one-line error (``seq2seq-attn ...: error: <what, where>``, exit 2),
checks come before writes, non-finite weights are never applied, saved or loaded, and prediction outputs
line up with their inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from seq2seq_attn.cli import main
from seq2seq_attn.config import ConfigError, apply_overrides, parse_override


def _error(capsys: pytest.CaptureFixture, command: str) -> str:
    """The one stderr line of a failed command (and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"seq2seq-attn {command}: error: "), err
    return lines[-1]


# ------------------------------------------------------------------------------------------ §1 overrides


def test_override_yaml_errors_and_paths_through_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"--set training.lr=\[1: invalid YAML value"):
        parse_override("training.lr=[1")
    with pytest.raises(ConfigError, match="empty key"):
        parse_override("=3")
    with pytest.raises(ConfigError, match=r"--set training.lr.x: training.lr is a value \(0.1\), not a section"):
        apply_overrides({"training": {"lr": 0.1}}, {"training.lr.x": 1})
    with pytest.raises(ConfigError, match="expected a dotted key"):
        apply_overrides({}, {"training..lr": 1})
    assert apply_overrides({"a": {"b": 1}}, {"a.c": 2, "d.e": 3}) == {"a": {"b": 1, "c": 2}, "d": {"e": 3}}


@pytest.mark.parametrize("command", [["train"], ["classify", "train"], ["vision", "train"], ["vision", "compare"]])
@pytest.mark.parametrize("override", ["training.lr=[1", "training.lr.x=1", "training=3"])
def test_bad_overrides_give_one_line_errors_in_every_training_command(tmp_path, capsys, command, override):
    config = tmp_path / "c.yaml"
    config.write_text("training: {lr: 0.1}\ndata: {}\n", encoding="utf-8")
    assert main([*command, str(config), "--set", override]) == 2
    line = _error(capsys, " ".join(command))
    if override != "training=3":  # (that one is a type error of the section, reported with the other keys)
        assert f"--set {override.split('=')[0] if '.x' in override else override}" in line


# ------------------------------------------------------------------------------------------- §1 vision


def _vision_config(tmp_path: Path, y_train, y_test, **model) -> Path:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (len(y_train), 8, 8), dtype=np.uint8)
    x_test = rng.integers(0, 256, (len(y_test), 8, 8), dtype=np.uint8)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=x_train, y_train=np.asarray(y_train, np.int64), x_test=x_test,
             y_test=np.asarray(y_test, np.int64))
    cfg = {"data": {"path": str(data), "batch_size": 4},
           "model": {"arch": "small", "widths": [4, 8], **model},
           "training": {"run_dir": str(tmp_path / "run"), "device": "cpu", "max_steps": 1, "progress": False}}
    path = tmp_path / "vision.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize(("y_train", "y_test", "expected"), [
    ([0, 1, -1, 2], [0, 1], "train split: image 2 has label -1, outside the training classes 0..2"),
    ([], [0, 1], "train split: no images"),
    ([0, 1, 0, 1], [0, 5, 1], "test split: image 1 has label 5, outside the training classes 0..1"),
    ([0, 1, 0, 1], [], "test split: no images"),
])
def test_vision_labels_and_empty_splits_are_refused_before_training(tmp_path, capsys, y_train, y_test, expected):
    config = _vision_config(tmp_path, y_train, y_test)
    assert main(["vision", "train", str(config)]) == 2
    assert expected in _error(capsys, "vision train")
    assert not (tmp_path / "run").exists()  # nothing written


def test_vision_attention_kwargs_are_checked_against_the_module(tmp_path, capsys):
    config = _vision_config(tmp_path, [0, 1, 0, 1], [0, 1], attention="se", attention_kwargs={"ratio": 0.5})
    assert main(["vision", "train", str(config)]) == 2
    line = _error(capsys, "vision train")
    assert "model: attention_kwargs: attention module 'se' takes no argument 'ratio' (accepted: rd_ratio" in line
    assert main(["vision", "compare", "--data", "x.npz", "--modules", "se", "--no-train",
                 "--set", "compare.module_kwargs={cbam: {kernel: 3}}"]) == 2
    assert "module_kwargs.cbam: attention module 'cbam' takes no argument 'kernel'" in _error(capsys, "vision compare")
    # a value of the wrong type is named with the module, not a TypeError traceback
    from vision import create_attention

    with pytest.raises(ValueError, match="attention module 'se' with"):
        create_attention("se", 8, rd_ratio="big")


# ---------------------------------------------------------------------------------------- §1 long rows


def test_tsv_documents_longer_than_the_csv_field_limit_are_read(tmp_path):
    from seq2seq_attn.classification.config import DataConfig
    from seq2seq_attn.classification.data import read_split

    path = tmp_path / "long.tsv"
    long_doc = " ".join(["word"] * 250_000)  # 1.25 MB in one field
    path.write_text(f"text\tlabel\n{long_doc}\tpos\nshort one\tneg\n", encoding="utf-8")
    split = read_split(str(path), DataConfig(format="tsv", train=str(path)))
    assert [len(ex.text) for ex in split.examples] == [len(long_doc), 9] and split.num_bad == 0


# ------------------------------------------------------------------------------- §3 the non-finite guard


def _fit(run_dir: Path, task=None, **cfg):
    from _trainer_tasks import TinyRegression, config

    from seq2seq_attn.training import Trainer

    trainer = Trainer(task or TinyRegression(), config(str(run_dir), **cfg), {"task": "tiny"})
    return trainer, trainer.fit()


def test_nan_gradients_with_a_finite_loss_are_skipped_without_clipping(tmp_path):
    import torch
    from _trainer_tasks import TinyRegression

    task = TinyRegression(nan_grad_calls={3})
    trainer, summary = _fit(tmp_path / "run", task, max_epochs=1)  # clip_grad_norm is None
    assert summary["steps"] == len(task.train_batches(0)) - 1
    assert "non-finite gradient norm (nan)" in (tmp_path / "run" / "train.log").read_text()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_repeated_nan_gradients_stop_without_saving_and_the_message_is_true(tmp_path):
    import json

    from _trainer_tasks import TinyRegression

    from seq2seq_attn.training import NonFiniteLossError, load_weights

    run = tmp_path / "run"
    task = TinyRegression(nan_grad_calls=range(8, 1000))
    with pytest.raises(NonFiniteLossError, match=r"last: non-finite gradient norm \(nan\)\); stopped, last good "
                                                 r"checkpoint \(step 5\)"):
        _fit(run, task, save_every=5, eval_every=5, max_nonfinite=3)
    assert json.loads((run / "latest.json").read_text())["step"] == 5
    for which in ("latest", "best"):
        load_weights(task.build_model(), run, which=which)  # finite, or this would raise


def test_non_finite_weights_are_never_saved(tmp_path):
    """An optimizer update that makes the weights NaN (finite gradients, an infinite learning rate) is caught
    before the checkpoint is written."""
    from _trainer_tasks import TinyRegression

    from seq2seq_attn.training import NonFiniteLossError

    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"non-finite weights at step 1 \(0.weight.*not saved, no "
                                                 r"checkpoint written"):
        _fit(run, TinyRegression(), optimizer="sgd", lr=float("inf"), save_every=1, eval_every=100)
    assert not (run / "latest.json").exists() and not (run / "best.safetensors").exists()


# ------------------------------------------------------------------------- §1 non-finite weights, disk full


def test_loading_non_finite_weights_is_refused_naming_file_and_tensor(tmp_path):
    import torch
    from _trainer_tasks import TinyRegression

    from seq2seq_attn.training import CheckpointError, load_weights
    from seq2seq_attn.training.checkpoint import save_weights

    model = TinyRegression().build_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["3.bias"][0] = float("nan")
    save_weights(state, tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match=r"nan.safetensors: non-finite weights \(inf or NaN\) in 3.bias"):
        load_weights(model, tmp_path / "nan.safetensors")
    assert torch.isfinite(model[3].bias).all()  # the model is unchanged


def test_disk_full_during_a_checkpoint_keeps_the_last_one_and_says_so(tmp_path, monkeypatch, capsys):
    import errno
    import json
    import os

    from _trainer_tasks import TinyRegression, config

    from seq2seq_attn.training import WriteError, run_training

    run = tmp_path / "run"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(tuple(f"step-{s:06d}.state.pt.tmp-{os.getpid()}"
                                                             for s in (10,))):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(WriteError, match=r"checkpoint of step 10 not saved: could not write .*step-000010.state.pt "
                                         r"\(No space left on device\); the file it would replace is unchanged; "
                                         r"the last complete checkpoint \(step 5\) is kept"):
        _fit(run, TinyRegression(), save_every=5, eval_every=100)
    assert json.loads((run / "latest.json").read_text())["step"] == 5
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000005.safetensors",
                                                                     "step-000005.state.pt"]
    # Through the CLI: one line, exit code 2.
    from seq2seq_attn import cli

    monkeypatch.setattr(cli, "build_parser", lambda: _FakeParser(
        lambda: run_training(TinyRegression(), config(str(tmp_path / "run2"), save_every=10, eval_every=100))))
    assert cli.main([]) == 2
    assert "step 10 not saved" in _error(capsys, "fake")


class _FakeParser:
    """Stands in for the CLI's parser: its one command runs ``fn``."""

    def __init__(self, fn):
        self.fn = fn

    def parse_args(self, argv):
        import argparse

        return argparse.Namespace(command="fake", func=lambda args: self.fn())


def test_temp_files_of_a_killed_save_are_removed_at_the_next_start(tmp_path):
    import subprocess
    import sys

    from _trainer_tasks import TinyRegression

    run = tmp_path / "run"
    _fit(run, TinyRegression(), max_epochs=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    stale = [run / "checkpoints" / f".step-000020.safetensors.tmp-{pid}", run / f".best.json.tmp-{pid}"]
    live = run / f".latest.json.tmp-{os.getppid()}"  # a running process's: kept
    for p in [*stale, live]:
        p.write_bytes(b"x" * 100)
    from _trainer_tasks import config

    from seq2seq_attn.training import Trainer

    Trainer(TinyRegression(), config(str(run), max_epochs=2), {"task": "tiny"}, resume=True).fit()
    assert not any(p.exists() for p in stale) and live.exists()
    assert "removed 2 temporary files left by an interrupted save" in (run / "train.log").read_text()


# ------------------------------------------------------------------------------- §2 checks before writes


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    """A tiny translation run (2 steps) with its corpus and config."""
    from test_translation_cli import tiny_config, tiny_corpus

    root = tmp_path_factory.mktemp("mt")
    src, tgt = tiny_corpus(root)
    config = tiny_config(root, src, tgt)
    assert main(["train", str(config), *MT_SETS]) == 0
    return root, config, root / "run"


MT_SETS = ["--set", "training.max_steps=2", "--set", "training.eval_every=2", "--set", "training.progress=false"]


def test_a_failed_translation_run_writes_nothing_into_its_run_dir(tmp_path, capsys):
    from test_translation_cli import tiny_config, tiny_corpus

    src, tgt = tiny_corpus(tmp_path)
    config = tiny_config(tmp_path, src, tgt)
    assert main(["train", str(config), "--set", "data.max_len=1"]) == 2  # every line is too long
    assert "is empty after filtering" in _error(capsys, "train")
    assert not (tmp_path / "run").exists()  # no spm.model for the next run to pick up


@pytest.mark.parametrize("override", ["data.vocab_size=70", "data.joint_vocab=false", "data.spm_type=unigram"])
def test_resume_with_a_changed_vocabulary_is_refused_and_changes_nothing(translation_run, capsys, override):
    root, config, run = translation_run
    before = _snapshot(run)
    assert main(["train", str(config), "--resume", *MT_SETS, "--set", override]) == 2
    line = _error(capsys, "train")
    assert f"cannot resume with a different config: {override.split('=')[0]} (" in line
    assert _snapshot(run) == before  # no new spm.src.model / spm.tgt.model


def test_resume_without_the_subword_model_of_its_checkpoint_is_refused(translation_run, tmp_path, capsys):
    import shutil

    root, config, run = translation_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "spm.model").unlink()
    assert main(["train", str(config), "--resume", *MT_SETS, "--set", f"training.run_dir={copy}"]) == 2
    assert "spm.model: missing; the checkpoint's weights need the subword model" in _error(capsys, "train")
    assert not (copy / "spm.model").exists()


def _classify_config(root: Path) -> tuple[Path, Path]:
    """A tiny TSV training file and a config training on it for 2 steps into ``root/run``."""
    data = root / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"doc {i} word{i % 3}\t{'ab'[i % 2]}\n" for i in range(12)),
                    encoding="utf-8")
    config = root / "cls.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"format": "tsv", "train": str(data), "min_freq": 1, "batch_size": 4},
        "model": {"type": "attention", "encoder": "none", "embed_dim": 8},
        "training": {"run_dir": str(root / "run"), "device": "cpu", "max_steps": 2, "progress": False}}),
        encoding="utf-8")
    return data, config


def test_classification_resume_with_changed_labels_or_vocabulary_is_refused(tmp_path, capsys):
    data, config = _classify_config(tmp_path)
    assert main(["classify", "train", str(config)]) == 0
    before = _snapshot(tmp_path / "run")
    for override in ("data.min_freq=2", "data.labels=[b, a]", "data.lowercase=false"):
        assert main(["classify", "train", str(config), "--resume", "--set", override]) == 2
        assert f"cannot resume with a different config: {override.split('=')[0]} (" in _error(capsys, "classify train")
    assert _snapshot(tmp_path / "run") == before
    # A run that fails while reading its data leaves no labels.json or vocabulary behind.
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace(str(tmp_path / "run"), str(tmp_path / "run2")).replace(
        str(data), str(tmp_path / "missing.tsv")), encoding="utf-8")
    assert main(["classify", "train", str(bad)]) == 2
    assert not (tmp_path / "run2").exists()


def test_vision_resume_with_another_dataset_is_refused_before_reading_it(tmp_path, capsys):
    config = _vision_config(tmp_path, [0, 1, 0, 1], [0, 1])
    assert main(["vision", "train", str(config)]) == 0
    capsys.readouterr()
    assert main(["vision", "train", str(config), "--resume", "--set", "data.path=elsewhere.npz"]) == 2
    assert "cannot resume with a different config: data.path (" in _error(capsys, "vision train")


# ---------------------------------------------------------------------- §1 non-finite weights, end to end


def test_translate_refuses_a_run_with_nan_weights(translation_run, tmp_path, capsys):
    import shutil

    import torch

    from seq2seq_attn.training.checkpoint import read_weights, save_weights

    _, _, run = translation_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = read_weights(copy / "best.safetensors")
    name = sorted(state)[0]
    state[name] = torch.full_like(state[name], float("nan"))
    save_weights(state, copy / "best.safetensors")
    assert main(["translate", str(copy)]) == 2
    assert f"best.safetensors: non-finite weights (inf or NaN) in {name}" in _error(capsys, "translate")


# ------------------------------------------------------------------------ §4 one result per input line


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    _, config = _classify_config(root)
    assert main(["classify", "train", str(config)]) == 0
    return root / "run"


def test_classify_predict_writes_one_result_per_input_line(classify_run, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    # blank and whitespace-only lines, CRLF endings, a form feed and a line separator inside a line
    inputs.write_bytes("doc 1 word1\r\n\r\n   \ndoc\x0c 2 word2\u2028more\ndoc 3\n".encode())
    capsys.readouterr()
    assert main(["classify", "predict", str(classify_run), "--input", str(inputs), "--explain",
                 str(tmp_path / "ex")]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[-1] == "" and len(out[:-1]) == 5
    assert [bool(line) for line in out[:-1]] == [True, False, False, True, True]
    records = [json.loads(r) for r in (tmp_path / "ex.jsonl").read_text(encoding="utf-8").split("\n")[:-1]]
    assert [r["index"] for r in records] == list(range(5))
    assert [r["label"] is None for r in records] == [False, True, True, False, False]
    assert records[3]["text"] == "doc\x0c 2 word2\u2028more"


def test_classify_predict_writes_both_explanation_files_or_neither(classify_run, tmp_path, monkeypatch, capsys):
    import errno

    inputs = tmp_path / "in.txt"
    inputs.write_text("doc 1\ndoc 2\n", encoding="utf-8")
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f".ex.html.tmp-{os.getpid()}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert main(["classify", "predict", str(classify_run), "--input", str(inputs), "--explain",
                 str(tmp_path / "ex")]) == 2
    err = _error(capsys, "classify predict")
    assert "ex.html (No space left on device); no output was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # no .jsonl, no temp files
    assert capsys.readouterr().out == ""


def test_translate_and_test_keep_blank_and_odd_lines_in_place(translation_run, tmp_path, monkeypatch, capsys):
    root, _, run = translation_run
    src = tmp_path / "src.txt"
    src.write_bytes("Anna hat zwei Äpfel gekauft .\n\n  \nPaul\rhat drei Bücher gesehen .\r\nLena\n".encode())
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"a\n\n\nb\nc\n")
    monkeypatch.setattr("sys.stdin", open(src, encoding="utf-8"))  # noqa: SIM115 (closed by the fixture)
    capsys.readouterr()
    assert main(["translate", str(run), "--beam", "2"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 6 and out[-1] == "" and out[1] == out[2] == ""
    assert main(["test", str(run), "--src", str(src), "--ref", str(ref), "--output", str(tmp_path / "hyp")]) == 0
    hyp = (tmp_path / "hyp").read_text(encoding="utf-8").split("\n")
    assert len(hyp) == 6 and hyp[1] == hyp[2] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp", "ref.txt", "src.txt"]  # no temp file left


def test_corrupt_jpeg_archives_are_named_and_stale_decode_temp_files_removed(tmp_path):
    import subprocess
    import sys

    from test_vision_data import _jpeg_npz

    from vision.data import load_npz

    good = tmp_path / "good.npz"
    _jpeg_npz(good)
    with np.load(good) as data:
        arrays = dict(data)
    arrays["test_jpeg"] = arrays["test_jpeg"].copy()
    arrays["test_jpeg"][:20] = 0  # the first test image's JPEG header is gone
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"bad.npz: test split: image 0: not a readable JPEG"):
        load_npz(bad, "test", cache)
    # A decode killed before it finished left its temp file in the cache; the next decode removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (cache / "vision").mkdir(parents=True, exist_ok=True)
    stale = cache / "vision" / f".good-0-train.npy.tmp-{int(dead.stdout)}"
    stale.write_bytes(b"x" * 1000)
    assert len(load_npz(good, "train", cache)) == 6
    assert not stale.exists() and not [p for p in (cache / "vision").iterdir() if ".tmp-" in p.name]


def test_translation_test_writes_all_its_outputs_or_none(translation_run, tmp_path, monkeypatch, capsys):
    import errno

    from seq2seq_attn.translation import lifecycle

    root, _, run = translation_run
    src, ref = root / "tiny.de", root / "tiny.en"
    outputs = {"--output": tmp_path / "hyp.txt", "--save-attention": tmp_path / "heat",
               "--attention-npz": tmp_path / "attn"}  # (per-head heatmaps need a Transformer)
    flags = [a for k, v in outputs.items() for a in (k, str(v))]
    argv = ["test", str(run), "--src", str(src), "--ref", str(ref), *flags]
    real = lifecycle.write_attention

    def disk_full(*args, **kwargs):  # the last output fails half-way
        real(*args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lifecycle, "write_attention", disk_full)
    assert main(argv) == 2
    assert "(No space left on device); no output was written" in _error(capsys, "test")
    assert list(tmp_path.iterdir()) == []  # no output, no temp file or folder
    monkeypatch.setattr(lifecycle, "write_attention", real)
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attn.npz", "heat", "hyp.txt"]
    assert len(list((tmp_path / "heat").glob("*.png"))) == 24
    assert "wrote attention to " + str(tmp_path / "attn.npz") in capsys.readouterr().out
