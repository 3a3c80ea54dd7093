"""Tiny run directories with random weights (no training) for the export and serving tests: a run dir is its
config.yaml, the vocabulary files and best.safetensors, exactly what `train` leaves for inference."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from seq2seq_attn.config import load_config
from seq2seq_attn.training.checkpoint import save_weights

NAMES = ["Anna", "Ben", "Clara", "David", "Eva", "Felix"]
THINGS = [("einen Apfel", "an apple"), ("das Buch", "the book"), ("den Hund", "the dog"), ("Kaffee", "coffee")]
VERBS = [("gegessen", "ate"), ("gesehen", "saw"), ("gekauft", "bought")]
SOURCES = [f"{n} hat {d} {v} ." for n in NAMES for d, _ in THINGS for v, _ in VERBS]
TARGETS = [f"{n} {v} {e} ." for n in NAMES for _, e in THINGS for _, v in VERBS]


def _sharpen(model: torch.nn.Module, seed: int) -> None:
    """Random weights with large logits: greedy/beam choices are far from ties, so two engines agree."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[-1] ** 0.5))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def translation_run(root: Path, *, norm_first: bool = True, tie: bool = True, share: bool = True,
                    positions: str = "sinusoidal", arch: str = "transformer", seed: int = 0) -> Path:
    """A Transformer (or RNN) translation run dir under ``root`` with random weights."""
    from seq2seq_attn.translation.config import TranslationConfig
    from seq2seq_attn.translation.models import build_model
    from seq2seq_attn.translation.subwords import PAD, Vocabs

    root.mkdir(parents=True, exist_ok=True)
    src, tgt = root / "tiny.de", root / "tiny.en"
    src.write_text("".join(s + "\n" for s in SOURCES), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in TARGETS), encoding="utf-8")
    run_dir = root / "run"
    run_dir.mkdir()
    model_cfg: dict = {"arch": arch, "tie_embeddings": tie, "share_embeddings": share}
    if arch == "transformer":
        model_cfg["transformer"] = {"d_model": 32, "heads": 4, "encoder_layers": 2, "decoder_layers": 2,
                                    "ffn_dim": 64, "dropout": 0.0, "norm_first": norm_first,
                                    "positions": positions, "max_positions": 128}
    else:
        model_cfg["rnn"] = {"emb_dim": 16, "enc_hidden": 16, "dec_hidden": 32, "dropout": 0.0}
    cfg = {"data": {"train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)},
                    "vocab_size": 60, "spm_type": "bpe", "joint_vocab": share},
           "model": model_cfg, "decoding": {"beam_size": 4, "alpha": 0.6, "max_len_a": 1.0, "max_len_b": 5},
           "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    config = load_config(TranslationConfig, run_dir / "config.yaml")
    vocabs = Vocabs.train(share, SOURCES, TARGETS, 60, "bpe", 1.0, 1000)
    vocabs.save(run_dir)
    torch.manual_seed(seed)
    model = build_model(config.model, vocabs.src.get_piece_size(), vocabs.tgt.get_piece_size(), PAD)
    _sharpen(model, seed)
    save_weights(model.state_dict(), run_dir / "best.safetensors")
    return run_dir


CLASSIFY_DOCS = ["The plot was dull. We saw it after dinner.", "The film was great.",
                 "It runs for two hours. The acting was awful.", "The cast was superb.", "This movie was boring."]


def classifier_run(root: Path, model_type: str = "attention", seed: int = 0, **model) -> Path:
    """A classify run dir (word vocabulary, labels neg/pos/neutral) with random weights."""
    from seq2seq_attn.classification.config import ClassificationConfig
    from seq2seq_attn.classification.models import build_model
    from seq2seq_attn.classification.text import CLS, PAD, UNK, WordVocab

    run_dir = root / f"cls_{model_type}"
    run_dir.mkdir(parents=True)
    words = sorted({w for d in CLASSIFY_DOCS for w in WordVocab([PAD, UNK, CLS]).tokenize(d.lower())})
    vocab = WordVocab([PAD, UNK, CLS, *words])
    vocab.save(run_dir)
    labels = ["neg", "neutral", "pos"]
    (run_dir / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    cfg = {"data": {"format": "tsv", "train": str(root / "unused.tsv"), "min_freq": 1},
           "model": {"type": model_type, "embed_dim": 16, "hidden_size": 8, "num_heads": 2, "ff_dim": 32,
                     "dropout": 0.0, "embed_dropout": 0.0, **model},
           "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1, "metric": "accuracy",
                        "metric_mode": "max"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    config = load_config(ClassificationConfig, run_dir / "config.yaml")
    torch.manual_seed(seed)
    net = build_model(config.model, len(vocab), len(labels))
    save_weights(net.state_dict(), run_dir / "best.safetensors")
    return run_dir


def vision_run(root: Path, attention: str | None = "se", seed: int = 0, data_path: str = "missing.npz",
               **model) -> Path:
    """A vision run dir (arch small, 3 classes, 3 channels) with random weights; ``data_path`` need not exist."""
    from vision.config import VisionConfig
    from vision.task import build_model

    run_dir = root / f"vision_{attention}"
    run_dir.mkdir(parents=True)
    cfg = {"data": {"path": str(data_path), "valid": "test"},
           "model": {"arch": "small", "widths": [8, 16], "blocks": [1, 1], "attention": attention, **model},
           "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    config = load_config(VisionConfig, run_dir / "config.yaml")
    torch.manual_seed(seed)
    net = build_model(config.model, 3, 3)
    save_weights(net.state_dict(), run_dir / "best.safetensors")
    return run_dir
