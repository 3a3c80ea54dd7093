"""Issue 12: every bad input gets a one-line error (``seq2seq-attn ...: error: <what, where>``, exit 2),
checks come before writes, non-finite weights are never applied, saved or loaded, and prediction outputs
line up with their inputs."""

from __future__ import annotations

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
