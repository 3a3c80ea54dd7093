"""What the server computes: translation (our model or a CTranslate2 export) and classification, one batched
call at a time (``compute(key, items)``, see :mod:`.batching`), with the limits that protect them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A request the server refuses (HTTP 4xx): ``status`` and a one-line message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Limits:
    """Per-request limits: strings per request, characters per string, beam size."""

    max_items: int = 64
    max_chars: int = 2000
    max_beam: int = 16

    def check_texts(self, texts: list[str], what: str) -> None:
        """InputError (413) naming the first string over the limits."""
        if len(texts) > self.max_items:
            raise InputError(f"{len(texts)} {what} in one request; the limit is {self.max_items}", 413)
        for i, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise InputError(f"{what}[{i}] has {len(text)} characters; the limit is {self.max_chars}", 413)


def _round(rows: list[list[float]]) -> list[list[float]]:
    return [[round(v, 5) for v in row] for row in rows]


class TranslationEngine:
    """A translation run behind the ``translate(sources, beam, n_best)`` / ``detok`` interface (our
    :class:`~seq2seq_attn.translation.lifecycle.TranslationRun` or :class:`~seq2seq_attn.export.ct2.CT2Run`)."""

    task = "translation"

    def __init__(self, run: Any, limits: Limits, engine: str) -> None:
        self.run, self.limits, self.engine = run, limits, engine

    def describe(self) -> dict:
        dec = self.run.cfg.decoding
        return {"task": self.task, "engine": self.engine, "beam": dec.beam_size, "alpha": dec.alpha}

    def key(self, beam: int | None, alpha: float | None, n_best: int) -> tuple:
        """Checks the options; the batching key (requests with equal keys share a model call)."""
        beam = self.run.cfg.decoding.beam_size if beam is None else beam
        if beam > self.limits.max_beam:
            raise InputError(f"beam {beam} is over the limit of {self.limits.max_beam}")
        if n_best > beam:
            raise InputError(f"n_best {n_best} is larger than the beam size {beam}")
        return beam, alpha, n_best

    def compute(self, key: tuple, items: list[tuple[str, bool, bool]]) -> list[dict]:
        """items: (sentence, with attention, with alignment) -> one ``Translation`` dict each."""
        beam, alpha, n_best = key
        run = self.run
        if alpha is not None:
            run = replace(run, cfg=replace(run.cfg, decoding=replace(run.cfg.decoding, alpha=alpha)))
        sources = [s.strip() for s, _, _ in items]
        todo = [i for i, s in enumerate(sources) if s]
        hyps: list[list] = [[] for _ in sources]
        for i, h in zip(todo, run.translate([sources[i] for i in todo], beam, n_best) if todo else []):
            hyps[i] = h
        return [self._translation(run, source, h, attention, align)
                for source, h, (_, attention, align) in zip(sources, hyps, items)]

    def _translation(self, run: Any, source: str, hyps: list, attention: bool, align: bool) -> dict:
        from ..translation.alignment import hypothesis_alignment

        out = []
        for h in hyps:
            item: dict = {"text": run.detok(h.tokens), "score": float(h.score), "log_prob": float(h.log_prob)}
            if attention:
                item["attention"] = _round(h.attention.tolist())
                item["source_pieces"] = [*run.vocabs.src.encode(source, out_type=str), "</s>"]
                item["target_pieces"] = [*(run.vocabs.tgt.id_to_piece(t) for t in h.tokens), "</s>"]
            if align:
                item["alignment"] = hypothesis_alignment(run, source, h)
            out.append(item)
        if not out:  # an empty sentence
            out = [{"text": "", "score": 0.0, "log_prob": 0.0}]
        return {"text": out[0]["text"], "hypotheses": out}


class ClassificationEngine:
    """A classify run (:class:`~seq2seq_attn.classification.lifecycle.ClassifierRun`)."""

    task = "classification"

    def __init__(self, run: Any, limits: Limits) -> None:
        self.run, self.limits = run, limits

    def describe(self) -> dict:
        return {"task": self.task, "engine": "torch", "labels": list(self.run.labels)}

    def compute(self, key: Any, items: list[tuple[str, bool]]) -> list[dict]:
        """items: (document, with token weights) -> one ``Classification`` dict each."""
        explanations = self.run.explain([text for text, _ in items])
        out = []
        for e, (_, weights) in zip(explanations, items):
            item: dict = {"label": e.label, "probabilities": {k: float(v) for k, v in e.probabilities.items()}}
            if weights:
                item["tokens"], item["token_weights"] = list(e.tokens), [round(float(w), 6) for w in e.weights]
            out.append(item)
        return out


def load_engine(run_dir: str | Path, limits: Limits, engine: str = "torch", device: str = "cpu",
                which: str = "best", compute_type: str = "default") -> TranslationEngine | ClassificationEngine:
    """The engine for ``run_dir``: a classify run, a translation run, or (``engine="ctranslate2"``) a directory
    written by ``export --format ctranslate2``."""
    from ..training.lifecycle import run_kind

    run_dir = Path(run_dir)
    if engine == "ctranslate2":
        from ..export.ct2 import load_ct2

        return TranslationEngine(load_ct2(run_dir, compute_type), limits, engine)
    kind = run_kind(run_dir)
    if kind == "classification":
        from ..classification.lifecycle import load_run as load_classifier

        return ClassificationEngine(load_classifier(run_dir, device, which), limits)
    if kind == "translation":
        from ..translation.lifecycle import load_run

        return TranslationEngine(load_run(run_dir, device, which), limits, engine)
    raise ValueError(f"{run_dir}: serve runs translation and classify runs, not {kind} runs")
