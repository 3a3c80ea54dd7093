"""The Transformer end to end: trained by the Trainer through the CLI on a tiny corpus, tested, translated from
the saved run dir in a fresh process; all attention matrices exported per layer and head."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from test_translation_cli import tiny_corpus

from seq2seq_attn.cli import main
from seq2seq_attn.translation.attention_export import attention_maps, write_attention
from seq2seq_attn.translation.lifecycle import evaluate, load_run


def transformer_config(tmp_path: Path, src: Path, tgt: Path) -> Path:
    cfg = {
        "data": {"train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)},
                 "vocab_size": 60, "spm_type": "bpe", "max_tokens": 1000},
        "model": {"arch": "transformer", "tie_embeddings": True, "share_embeddings": True,
                  "transformer": {"d_model": 32, "heads": 4, "encoder_layers": 2, "decoder_layers": 2,
                                  "ffn_dim": 64, "dropout": 0.0, "norm_first": True, "max_positions": 64}},
        "decoding": {"beam_size": 3, "alpha": 0.6},
        "label_smoothing": 0.0,
        "training": {"run_dir": str(tmp_path / "run"), "device": "cpu", "lr": 0.005, "schedule": "noam",
                     "warmup_steps": 20, "betas": [0.9, 0.98], "max_epochs": 200, "eval_every": 50,
                     "metric": "bleu", "metric_mode": "max", "patience": 3, "log_every": 1000,
                     "tensorboard": False, "progress": False},
    }
    path = tmp_path / "tiny_transformer.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_transformer_train_test_translate_and_attention(tmp_path: Path) -> None:
    src, tgt = tiny_corpus(tmp_path)
    assert main(["train", str(transformer_config(tmp_path, src, tgt))]) == 0
    run_dir = tmp_path / "run"
    # Greedy: the search's beam rule (a sentence stops once K hypotheses have ended) can let early garbage
    # endings win on such a tiny model; beam search itself is checked against the uncached model elsewhere.
    # What `seq2seq-attn test` prints:
    scores = evaluate(load_run(run_dir, "cpu"), src, tgt, beam_size=1, out=io.StringIO())
    assert scores[0].text.startswith("BLEU = 100.00")  # overfits the tiny corpus

    # A fresh process translates from the run dir alone.
    lines = src.read_text(encoding="utf-8").splitlines()[:3]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-m", "seq2seq_attn", "translate", str(run_dir), "--beam", "1"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == tgt.read_text(encoding="utf-8").splitlines()[:3]

    # Every attention of the chosen hypothesis: encoder self, decoder self and cross, per layer and head.
    run = load_run(run_dir, "cpu")
    hyp = run.translate(lines[:1], beam_size=3)[0][0]
    src_ids = run.vocabs.encode_src(lines[:1])[0]
    maps = attention_maps(run.model, src_ids, hyp.tokens, "cpu")
    s, t = len(src_ids), len(hyp.tokens) + 1
    assert {k: v.shape for k, v in maps.items()} == {
        **{f"encoder_layers.{i}.self_attn": (4, s, s) for i in range(2)},
        **{f"decoder_layers.{i}.self_attn": (4, t, t) for i in range(2)},
        **{f"decoder_layers.{i}.multihead_attn": (4, t, s) for i in range(2)},
    }
    # The search's attention matrix is the last layer's cross-attention averaged over heads.
    np.testing.assert_allclose(maps["decoder_layers.1.multihead_attn"].mean(0), hyp.attention.numpy(), atol=1e-5)

    # The exporter: all matrices to .npz, per-head heatmaps of the last layer.
    first = tmp_path / "first.de"
    first.write_text(lines[0] + "\n", encoding="utf-8")
    write_attention(run.model, run.vocabs, run.device, lines[:1], run.translate(lines[:1], beam_size=3),
                    tmp_path / "attn.npz", tmp_path / "heads")
    src_pieces = [*run.vocabs.src.encode(lines[0], out_type=str), "</s>"]
    with np.load(tmp_path / "attn.npz") as data:
        assert sorted(data.files) == sorted([f"0/{k}" for k in maps] + ["0/src", "0/tgt"])
        np.testing.assert_allclose(data["0/decoder_layers.0.self_attn"], maps["decoder_layers.0.self_attn"])
        assert list(data["0/src"]) == src_pieces and len(data["0/tgt"]) == t
    pngs = sorted((tmp_path / "heads").glob("*.png"))
    assert [p.name for p in pngs] == ["00001_L1_h0.png", "00001_L1_h1.png", "00001_L1_h2.png", "00001_L1_h3.png",
                                      "00001_L1_mean.png"]
    assert pngs[0].read_bytes()[:4] == b"\x89PNG"

    # The same from `seq2seq-attn test`, after its own search and scoring.
    first_ref = tmp_path / "first.en"
    first_ref.write_text(tgt.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert main(["test", str(run_dir), "--src", str(first), "--ref", str(first_ref), "--beam", "3", "--device", "cpu",
                 "--attention-npz", str(tmp_path / "test_attn.npz"),
                 "--attention-heads", str(tmp_path / "test_heads")]) == 0
    with np.load(tmp_path / "test_attn.npz") as data, np.load(tmp_path / "attn.npz") as exported:
        assert sorted(data.files) == sorted(exported.files)
        np.testing.assert_allclose(data["0/decoder_layers.1.multihead_attn"],
                                   exported["0/decoder_layers.1.multihead_attn"])
    assert sorted(p.name for p in (tmp_path / "test_heads").glob("*.png")) == [p.name for p in pngs]
