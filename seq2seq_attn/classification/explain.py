"""Explanations of predictions: one JSONL record per document with each token's attention weight (and each
sentence's, for HAN), and a self-contained HTML page that highlights the tokens by weight."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..training.checkpoint import atomic_write_files
from .models import ClassifierOutput
from .text import EncodedDoc


@dataclass
class Explanation:
    text: str
    label: str
    probabilities: dict[str, float]
    tokens: list[str]
    # The document-level weight of each token; sums to one over a document. For HAN it is the token's word
    # weight times its sentence's weight.
    weights: list[float]
    sentence_spans: list[tuple[int, int]]  # [start, end) token indices of each sentence
    sentence_weights: list[float] | None = None  # HAN only; sums to one
    word_weights: list[float] | None = None  # HAN only: weight inside the token's sentence

    def record(self, index: int) -> dict:
        tokens = []
        for i, (tok, w) in enumerate(zip(self.tokens, self.weights)):
            item = {"token": tok, "weight": round(w, 6)}
            if self.word_weights is not None:
                item["word_weight"] = round(self.word_weights[i], 6)
            tokens.append(item)
        rec = {"index": index, "label": self.label, "probabilities": self.probabilities, "text": self.text,
               "tokens": tokens}
        if self.sentence_weights is not None:
            rec["sentences"] = [{"start": s, "end": e, "weight": round(w, 6)}
                                for (s, e), w in zip(self.sentence_spans, self.sentence_weights)]
        return rec


def explanation(text: str, doc: EncodedDoc, out: ClassifierOutput, labels: list[str],
                hierarchical: bool) -> Explanation:
    """Pair one document's tokens with its attention weights (``out`` holds one document, unbatched: logits
    (C,), token weights (T,) or, for HAN, (S, W) word weights and (S,) sentence weights)."""
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


def jsonl_text(explanations: Sequence[Explanation | None]) -> str:
    """One JSON record per line, in order; ``None`` (a blank input line) gives a record with label null, no
    probabilities and no tokens, so record ``i`` always belongs to input line ``i``."""
    lines = []
    for i, ex in enumerate(explanations):
        rec = ex.record(i) if ex is not None else {"index": i, "label": None, "probabilities": {}, "text": "",
                                                   "tokens": []}
        lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
    return "".join(lines)


def write_jsonl(explanations: Sequence[Explanation | None], path: Path) -> None:
    """:func:`jsonl_text` into ``path`` (atomically)."""
    atomic_write_files({path: jsonl_text(explanations).encode("utf-8")})


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; line-height: 1.9; color: #222; }
section.doc { border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem 1rem; margin-bottom: 1.2rem; }
section.doc h2 { font-size: 1rem; margin: 0 0 0.4rem 0; }
.probs { font-size: 0.85rem; color: #555; }
.tok { border-radius: 3px; padding: 0.05rem 0.1rem; }
.sent { display: flex; gap: 0.6rem; align-items: baseline; }
.sentbar { flex: 0 0 4rem; height: 0.6rem; background: #eee; border-radius: 3px; position: relative; }
.sentbar span { position: absolute; left: 0; top: 0; bottom: 0; background: #2563eb; border-radius: 3px; }
.legend { font-size: 0.85rem; color: #555; }
"""


def _token_html(token: str, weight: float, scale: float, word_weight: float | None) -> str:
    alpha = min(1.0, weight / scale) if scale > 0 else 0.0
    title = f"weight {weight:.4f}" + (f", in sentence {word_weight:.4f}" if word_weight is not None else "")
    return (f'<span class="tok" style="background-color: rgba(220, 38, 38, {alpha:.3f})" '
            f'title="{title}">{html.escape(token)}</span>')


def _doc_html(index: int, ex: Explanation) -> str:
    probs = ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in ex.probabilities.items())
    parts = [f'<section class="doc" id="doc-{index}">',
             f"<h2>document {index}: {html.escape(ex.label)}</h2>", f'<div class="probs">{probs}</div>']
    scale = max(ex.weights, default=0.0)  # the most attended token of each document is fully coloured
    for s, (start, end) in enumerate(ex.sentence_spans):
        toks = " ".join(
            _token_html(ex.tokens[i], ex.weights[i], scale, ex.word_weights[i] if ex.word_weights else None)
            for i in range(start, end))
        if ex.sentence_weights is not None:
            w = ex.sentence_weights[s]
            parts.append(f'<div class="sent"><div class="sentbar" title="sentence weight {w:.4f}">'
                         f'<span style="width: {100 * w:.1f}%"></span></div><div>{toks}</div></div>')
        else:
            parts.append(f"<p>{toks}</p>")
    parts.append("</section>")
    return "\n".join(parts)


def html_text(explanations: Sequence[Explanation | None], title: str = "attention explanations") -> str:
    """One page, no external resources: one section per document (``doc-i`` for input line ``i``; blank lines,
    ``None``, have none), tokens shaded by their weight."""
    legend = ("Token colour: attention weight relative to the most attended token of the document. "
              "Blue bars (HAN): each sentence's attention weight. Hover a token for its exact weight.")
    body = "\n".join(_doc_html(i, ex) for i, ex in enumerate(explanations) if ex is not None)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}'
            f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="legend">{legend}</p>\n{body}\n</body>\n</html>\n')


def write_html(explanations: Sequence[Explanation | None], path: Path, title: str = "attention explanations") -> None:
    """:func:`html_text` into ``path`` (atomically)."""
    atomic_write_files({path: html_text(explanations, title).encode("utf-8")})
