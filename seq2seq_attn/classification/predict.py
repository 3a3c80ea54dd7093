"""A trained run as a classifier: reads the run's config, vocabulary, labels and best weights, and turns
raw documents into labels, probabilities and attention explanations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import load_config
from .config import ClassificationConfig
from .explain import Explanation
from .models import ClassifierOutput, build_model
from .task import predict_docs
from .text import EncodedDoc, encode, load_vocab


def load_run(run_dir: Path, device: torch.device, which: str = "best") -> tuple[ClassificationConfig, nn.Module]:
    """The config of ``run_dir`` and its model with the ``which`` ("best" or "latest") weights, in eval mode."""
    from ..training import load_weights

    run_dir = Path(run_dir)
    cfg = load_config(ClassificationConfig, run_dir / "config.yaml")
    cfg.training.apply_cpu_threads()
    vocab = load_vocab(run_dir)
    labels = json.loads((run_dir / "labels.json").read_text(encoding="utf-8"))
    model = build_model(cfg.model, len(vocab), len(labels))
    load_weights(model, run_dir, which=which)
    return cfg, model.to(device).eval()


def explanation(text: str, doc: EncodedDoc, out: ClassifierOutput, labels: list[str],
                hierarchical: bool) -> Explanation:
    """Pair one document's tokens with its attention weights (``out`` holds one document, unbatched)."""
    probs = torch.softmax(out.logits, -1).tolist()
    bounds = np.concatenate([[0], np.cumsum(doc.sentence_lengths)]).tolist()
    spans = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    sentence_weights = word_weights = None
    if hierarchical:
        sw = out.sentence_weights.tolist()  # (S,)
        ww = out.token_weights  # (S, W)
        word_weights = [float(ww[s, i]) for s, (a, b) in enumerate(spans) for i in range(b - a)]
        weights = [word_weights[i] * sw[s] for s, (a, b) in enumerate(spans) for i in range(a, b)]
        sentence_weights = sw[: len(spans)]
    else:
        weights = out.token_weights[: len(doc.tokens)].tolist()
    return Explanation(text, labels[int(out.logits.argmax())], dict(zip(labels, probs)), doc.tokens, weights,
                       spans, sentence_weights, word_weights)


class Predictor:
    """``Predictor(run_dir).explain(["a document", ...])`` -> one :class:`Explanation` per document."""

    def __init__(self, run_dir: Path, device: str | torch.device = "cpu", which: str = "best") -> None:
        self.device = torch.device(device)
        self.cfg, self.model = load_run(Path(run_dir), self.device, which)
        self.vocab = load_vocab(Path(run_dir))
        self.labels = json.loads((Path(run_dir) / "labels.json").read_text(encoding="utf-8"))
        self.hierarchical = self.cfg.model.type == "han"

    def explain(self, texts: list[str]) -> list[Explanation]:
        docs = [encode(t, self.vocab, self.cfg.data, self.hierarchical) for t in texts]
        outs = predict_docs(self.model, docs, self.hierarchical, self.cfg.data.eval_batch_size, self.device)
        return [explanation(t, d, o, self.labels, self.hierarchical) for t, d, o in zip(texts, docs, outs)]
