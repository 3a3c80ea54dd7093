"""End to end through the CLI: train overfits a tiny corpus to BLEU 100, `test` prints sacrebleu signatures and
writes heatmaps, `translate` round-trips from the saved run dir in a fresh process; bad input exits with 2."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2seq_attn.cli import main

NAMES = ["Anna", "Peter", "Lena", "Paul"]
THINGS = [("zwei Äpfel", "two apples"), ("drei Bücher", "three books"), ("vier Katzen", "four cats")]
VERBS = [("gekauft", "bought"), ("gesehen", "saw")]



def tiny_corpus(tmp_path: Path) -> tuple[Path, Path]:
    # German participle last, English verb second: the alignment crosses.
    pairs = [(f"{n} hat {d} {vd} .", f"{n} {ve} {e} .") for n in NAMES for d, e in THINGS for vd, ve in VERBS]
    src, tgt = tmp_path / "tiny.de", tmp_path / "tiny.en"
    src.write_text("".join(p[0] + "\n" for p in pairs), encoding="utf-8")
    tgt.write_text("".join(p[1] + "\n" for p in pairs), encoding="utf-8")
    return src, tgt


def tiny_config(tmp_path: Path, src: Path, tgt: Path, **model) -> Path:
    cfg = {
        "data": {"train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)},
                 "vocab_size": 60, "spm_type": "bpe", "max_tokens": 1000},
        "model": {"arch": "rnn", "rnn": {"emb_dim": 32, "enc_hidden": 32, "dec_hidden": 64, "dropout": 0.0,
                                         **model}},
        "decoding": {"beam_size": 3, "alpha": 0.6},
        "label_smoothing": 0.0,
        "training": {"run_dir": str(tmp_path / "run"), "device": "cpu", "cpu_threads": 1, "lr": 0.02, "max_epochs": 50,
                     "eval_every": 25, "metric": "bleu", "metric_mode": "max", "log_every": 1000},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_train_test_translate_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, tgt = tiny_corpus(tmp_path)
    config = tiny_config(tmp_path, src, tgt, decoder="luong", score="general")
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    assert (run / "spm.model").is_file() and (run / "config.yaml").is_file()
    capsys.readouterr()

    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--beam", "3",
                 "--output", str(tmp_path / "hyp.en")]) == 0
    out = capsys.readouterr().out
    assert "BLEU = 100.00" in out  # overfit: every training sentence translated exactly
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in out  # sacrebleu's BLEU signature
    assert "chrF2 = 100.00" in out and "TER = 0.00" in out
    assert (tmp_path / "hyp.en").read_text(encoding="utf-8") == tgt.read_text(encoding="utf-8")
    # Any weights file of the same model (e.g. averaged checkpoints) and another length penalty.
    weights = tmp_path / "copy.safetensors"
    weights.write_bytes((run / "best.safetensors").read_bytes())
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--which", str(weights),
                 "--alpha", "1.5"]) == 0
    out = capsys.readouterr().out
    assert f"alpha 1.5, weights {weights}" in out and "BLEU = 100.00" in out
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--which", "nope"]) == 2
    assert "weights 'nope': neither 'best', 'latest' nor an existing weights file" in capsys.readouterr().err
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--alpha", "-1"]) == 2
    assert "alpha must be >= 0, got -1.0" in capsys.readouterr().err

    # A fresh process needs nothing but the run dir (run from elsewhere, so no relative path can help).
    lines = src.read_text(encoding="utf-8").splitlines()[:3]
    heat = tmp_path / "heat"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "seq2seq_attn", "translate", str(run), "--beam", "2",
                             "--save-attention", str(heat)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    refs = tgt.read_text(encoding="utf-8").splitlines()
    try:
        # Interactive: the first line is answered before the next one is sent.
        proc.stdin.write(lines[0] + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == refs[0] + "\n"
        out, err = proc.communicate("\n".join(lines[1:]) + "\n", timeout=120)  # then a batch
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == refs[1:3]
    pngs = sorted(heat.glob("*.png"))
    assert [p.name for p in pngs] == ["00001.png", "00002.png", "00003.png"]
    assert pngs[0].read_bytes()[:4] == b"\x89PNG"

    # n-best above the config's beam (3) widens the beam to n: five distinct hypotheses per line, best first.
    from seq2seq_attn.translation.lifecycle import load_run, translate_stream

    read_fd, write_fd = os.pipe()
    os.write(write_fd, (lines[0] + "\n").encode("utf-8"))
    os.close(write_fd)
    nbest = io.StringIO()
    try:
        assert translate_stream(load_run(run, "cpu"), read_fd, nbest, n_best=5) == 1
    finally:
        os.close(read_fd)
    rows = [line.split(" ||| ") for line in nbest.getvalue().splitlines()]
    assert len(rows) == 5 and all(r[0] == "0" for r in rows) and len({r[1] for r in rows}) == 5
    assert rows[0][1] == refs[0] and [float(r[2]) for r in rows] == sorted((float(r[2]) for r in rows), reverse=True)


def test_bad_input_exits_with_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, tgt = tiny_corpus(tmp_path)
    short = tmp_path / "short.en"
    short.write_text("".join(tgt.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    config = tiny_config(tmp_path, src, short)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "tiny.de has 24 lines" in err and "short.en has 23 lines" in err
    assert main(["test", str(tmp_path / "nothing"), "--src", str(src), "--ref", str(tgt)]) == 2
    assert "not a run dir" in capsys.readouterr().err
