"""scripts/bench_hard_attention.py end to end on a tiny corpus: the translation mode trains two normalizers for
two steps each (each in its own process), then writes results.json (a BLEU, seconds and an attention entropy
per run) and the table; --table merges two halves into one table and refuses a run measured twice."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _tiny_runs import SOURCES, TARGETS

from seq2seq_attn.translation.subwords import Vocabs

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_hard_attention.py"


def load_script(monkeypatch: pytest.MonkeyPatch):
    """The script as a module (registered while the test runs: its dataclass needs it in sys.modules)."""
    spec = importlib.util.spec_from_file_location("bench_hard_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_translation_mode_and_merged_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    src, tgt = tmp_path / "tiny.de", tmp_path / "tiny.en"
    src.write_text("".join(s + "\n" for s in SOURCES), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in TARGETS), encoding="utf-8")
    pair = {"src": str(src), "tgt": str(tgt)}
    cfg = {"data": {"train": pair, "dev": pair, "test": pair, "vocab_size": 60, "spm_type": "bpe",
                    "max_tokens": 1000, "eval_batch_size": 16},
           "model": {"arch": "rnn", "rnn": {"emb_dim": 16, "enc_hidden": 16, "dec_hidden": 32, "dropout": 0.0}},
           "decoding": {"beam_size": 2, "max_len_a": 1.0, "max_len_b": 5},
           "training": {"device": "cpu", "cpu_threads": 1, "max_steps": 2, "eval_every": 2, "metric": "bleu",
                        "metric_mode": "max", "log_every": 1000}}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "bench"
    done = subprocess.run([sys.executable, str(SCRIPT), str(config), "--task", "translate", "--seeds", "1",
                           "--normalizers", "softmax", "gumbel", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [(r["task"], r["normalize"], r["seed"]) for r in rows] == [("translate", "softmax", 1),
                                                                      ("translate", "gumbel", 1)]
    vocabs = Vocabs.load(out / "softmax-s1", True)  # the same corpus and settings: the same subwords
    pairs = list(zip(vocabs.encode_src(SOURCES), vocabs.encode_tgt(TARGETS)))
    # Each target position's entropy is at most log(source pieces + EOS), so the mean is at most the mean of
    # those logs over target positions (reference pieces + EOS); two steps leave the attention near uniform.
    bound = sum((len(t) + 1) * math.log(len(s)) for s, t in pairs) / sum(len(t) + 1 for _, t in pairs)
    for row in rows:
        assert 0.0 <= row["bleu"] <= 100.0 and row["seconds"] > 0 and row["test_seconds"] > 0
        assert 0.8 * bound < row["entropy"] <= bound + 1e-6
    table = done.stdout.splitlines()[-4:]
    assert table[0].startswith("| attention | test BLEU (mean ± std over seeds) |")
    assert [line.split(" | ")[:2] for line in table[2:]] == [
        ["| softmax", f"{rows[0]['bleu']:.2f} ± 0.00"], ["| gumbel", f"{rows[1]['bleu']:.2f} ± 0.00"]]

    # Two halves (as two processes write them) make the same table.
    halves = [tmp_path / "a", tmp_path / "b"]
    for half, row in zip(halves, rows):
        half.mkdir()
        (half / "results.json").write_text(json.dumps([row]), encoding="utf-8")
    bench = load_script(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench", "--table", *map(str, halves)])
    bench.main()
    assert capsys.readouterr().out.splitlines() == table
    with pytest.raises(ValueError, match=r"measured twice: \[\('softmax', 1\)\]"):
        bench.read_results([halves[0], halves[0]])
    with pytest.raises(ValueError, match="nowhere/results.json: cannot read"):
        bench.read_results([tmp_path / "nowhere"])
    with pytest.raises(ValueError, match="different tasks"):
        bench.table([rows[0], {**rows[1], "task": "classify"}])
