"""Typed YAML configs: every error names the file and the key, before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from seq2seq_attn.cli import main
from seq2seq_attn.config import ConfigError, apply_overrides, from_dict, load_config, parse_override, save_config
from seq2seq_attn.training.config import TrainingConfig


@dataclass
class _Model:
    hidden_size: int
    score: Literal["dot", "general"] = "dot"
    dropout: float = 0.1
    layers: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class _Top:
    model: _Model
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str | None = None


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_loads_nested_sections_and_converts(tmp_path):
    p = _write(tmp_path, "model:\n  hidden_size: 8\n  dropout: 0\ntraining:\n  lr: 1e-3\n  betas: [0.9, 0.98]\n")
    cfg = load_config(_Top, p)
    assert cfg.model.hidden_size == 8 and cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.training.lr == pytest.approx(1e-3)  # YAML reads "1e-3" as a string; accepted as float
    assert cfg.training.betas == (0.9, 0.98)


@pytest.mark.parametrize(
    "text,message",
    [
        ("model:\n  hidden_size: 8\n  hiden: 3\n", r"c.yaml: model.hiden: unknown key"),
        ("model:\n  dropout: 0.1\n", r"c.yaml: model.hidden_size: required value is missing"),
        ("model:\n  hidden_size: big\n", r"c.yaml: model.hidden_size: expected int, got str"),
        ("model:\n  hidden_size: 8\n  score: cosine\n", r"c.yaml: model.score: expected one of 'dot' \| 'general'"),
        ("model:\n  hidden_size: 8\n  layers: [1, x]\n", r"c.yaml: model.layers\[1\]: expected int"),
        ("model:\n  hidden_size: true\n", r"model.hidden_size: expected int, got bool"),
        ("model:\n  hidden_size: 8\ntraining:\n  lr: -1\n", r"c.yaml: training: lr must be > 0"),
        ("model: [1, 2]\n", r"c.yaml: model: expected a mapping"),
        ("model:\n  hidden_size: 8\n   bad: indent\n", r"c.yaml: line \d+: invalid YAML"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_config(_Top, p)


def test_missing_file():
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(_Top, "nope.yaml")


def test_overrides_and_round_trip(tmp_path):
    p = _write(tmp_path, "model:\n  hidden_size: 8\n")
    key, value = parse_override("training.max_epochs=3")
    cfg = load_config(_Top, p, {key: value, "model.score": "general"})
    assert cfg.training.max_epochs == 3 and cfg.model.score == "general"
    out = tmp_path / "saved.yaml"
    save_config(cfg, out)
    assert load_config(_Top, out) == cfg
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("training.max_epochs")
    # --set cannot run through a plain value; a list at the top level is no config.
    with pytest.raises(ConfigError, match=r"--set model.hidden_size.x: model.hidden_size is a value \(8\), not a"):
        load_config(_Top, p, {"model.hidden_size.x": 1})
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping, got list"):
        load_config(_Top, _write(tmp_path, "- 1\n- 2\n", "list.yaml"))


def test_apply_overrides_creates_sections():
    assert apply_overrides({"a": {"b": 1}}, {"a.c": 2, "d.e.f": [3]}) == {"a": {"b": 1, "c": 2}, "d": {"e": {"f": [3]}}}


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        from_dict(_Top, [1, 2], "x.yaml")


def test_cli_help_and_attention_demo(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "attention-demo" in capsys.readouterr().out
    out = tmp_path / "demo.png"
    assert main(["attention-demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.stat().st_size > 1000
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in printed.splitlines()[:-1]}
    assert set(rows) == {"dot", "scaled_dot", "general", "additive", "location"}
    for weights in rows.values():
        assert sum(weights) == pytest.approx(1.0, abs=1e-2)
    # the key built from the query wins under the similarity scores
    assert max(range(6), key=lambda i: rows["dot"][i]) == 2
    assert max(range(6), key=lambda i: rows["scaled_dot"][i]) == 2


def test_decoding_section_keys() -> None:
    from seq2seq_attn.translation.config import TranslationConfig

    data = {"train": {"tsv": "x"}, "dev": {"tsv": "x"}}
    cfg = from_dict(TranslationConfig, {"data": data, "decoding": {
        "sampling": True, "top_k": 5, "top_p": 0.9, "temperature": 0.7, "seed": 3, "no_repeat_ngram_size": 3,
        "repetition_penalty": 1.2, "coverage_beta": 0.2, "ensemble": ["runs/a", "b.safetensors"]}})
    assert cfg.decoding.top_k == 5 and cfg.decoding.ensemble == ["runs/a", "b.safetensors"]
    assert cfg.decoding.describe() == ("alpha 0.6, coverage_beta 0.2, sampling, temperature 0.7, top_k 5, "
                                       "top_p 0.9, seed 3, no_repeat_ngram_size 3, repetition_penalty 1.2")
    with pytest.raises(ConfigError, match="top_p"):
        from_dict(TranslationConfig, {"data": data, "decoding": {"top_p": 1.5}})
