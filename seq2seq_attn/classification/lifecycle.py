"""The classification lifecycle: train, load a run (:class:`ClassifierRun`), evaluate and predict.

``seq2seq-attn classify train|test|predict`` only parse their arguments and call :func:`train`,
:func:`evaluate` and :func:`predict`. A run dir holds ``config.yaml``, ``vocab.json`` (and the sentencepiece
model, if any), ``labels.json`` and the weights written by the Trainer.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from ..training.checkpoint import atomic_write_files
from ..training.lifecycle import LoadedRun, load_task_config, load_weights_for_inference, run_config_path
from .config import ClassificationConfig
from .data import load_labels
from .explain import Explanation, explanation, html_text, jsonl_text
from .metrics import format_report, plot_confusion
from .models import ClassifierOutput, build_model
from .task import ClassificationData, ClassificationTask, evaluate_split, load_split, predict_docs
from .text import EncodedDoc, Vocab, encode, load_vocab


def train(config_path: str | Path, overrides: dict | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> int:
    """Train a classifier as the config says; with ``data.test`` set, score the best weights on it afterwards
    (``test_report.txt``, ... in the run dir, see :func:`evaluate`). Returns the Trainer's exit code."""
    from ..training import prepare_run_dir, run_training

    cfg = load_task_config(ClassificationConfig, config_path, overrides)
    # Check the run dir before anything is written; the trainer creates it and saves the config.
    run_dir = prepare_run_dir(cfg.training.run_dir, cfg, resume=resume, overwrite=overwrite, write=False,
                              guarded=ClassificationTask.resume_keys)
    data = ClassificationData(cfg, run_dir, resume=resume)  # the Trainer saves labels.json and the vocabulary
    if data.num_bad:
        print(f"skipped {data.num_bad} bad rows (data.skip_bad_rows)")
    print(f"train {len(data.train)} documents, valid {len(data.valid) if data.valid else 0}, "
          f"{len(data.labels)} labels, vocabulary {len(data.vocab)}")
    task = ClassificationTask(cfg, data, resume=resume)
    code = run_training(task, cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)
    if code == 0 and cfg.data.test is not None:
        evaluate(load_run(run_dir, device or cfg.training.device), None, run_dir)
    return code


@dataclass
class ClassifierRun(LoadedRun):
    """A trained classification run: ``cfg`` (:class:`ClassificationConfig`), ``model`` (eval mode on
    ``device``), its ``vocab`` and ``labels`` (the output order of the model) and the ``weights`` loaded."""

    cfg: ClassificationConfig
    vocab: Vocab = field(repr=False)
    labels: list[str]

    @property
    def hierarchical(self) -> bool:
        """True for HAN, whose documents are encoded as sentences of words."""
        return self.cfg.model.type == "han"

    def encode(self, texts: list[str]) -> list[EncodedDoc]:
        """Documents as the model reads them (cleaned, tokenized, ids of the run's vocabulary)."""
        return [encode(t, self.vocab, self.cfg.data, self.hierarchical) for t in texts]

    def predict(self, docs: list[EncodedDoc]) -> list[ClassifierOutput]:
        """One unbatched :class:`ClassifierOutput` per encoded document (logits (C,) and attention weights,
        on the CPU), computed in batches of ``data.eval_batch_size``."""
        return predict_docs(self.model, docs, self.hierarchical, self.cfg.data.eval_batch_size, self.device)

    def explain(self, texts: list[str]) -> list[Explanation]:
        """One :class:`Explanation` per document: label, probabilities and each token's attention weight."""
        docs = self.encode(texts)
        outs = self.predict(docs)
        return [explanation(t, d, o, self.labels, self.hierarchical) for t, d, o in zip(texts, docs, outs)]


def load_run(run_dir: str | Path, device: str | torch.device = "auto", which: str = "best") -> ClassifierRun:
    """The run in ``run_dir`` with its ``which`` weights ("best", "latest" or a file) on ``device``. Raises
    ``FileNotFoundError`` when the config, vocabulary or label set is missing."""
    run_dir = Path(run_dir)
    cfg = load_task_config(ClassificationConfig, run_config_path(run_dir))
    vocab = load_vocab(run_dir)
    labels = load_labels(run_dir)
    model = build_model(cfg.model, len(vocab), len(labels))
    model, dev, weights = load_weights_for_inference(model, run_dir, which, device)
    return ClassifierRun(run_dir, cfg, model, dev, weights, vocab, labels)


def write_report(metrics: dict, cm: np.ndarray, labels: list[str], out: Path, prefix: str) -> str:
    """``{prefix}_report.txt``, ``{prefix}_metrics.json`` and ``{prefix}_confusion.png`` in ``out``; returns
    the report's text."""
    text = format_report(metrics, cm, labels)
    png = io.BytesIO()
    plot_confusion(cm, labels, png, title=f"{prefix}: confusion matrix")
    summary = json.dumps({**metrics, "confusion": cm.tolist(), "labels": labels}, indent=1)
    atomic_write_files({out / f"{prefix}_report.txt": text.encode("utf-8"),  # all three or none
                        out / f"{prefix}_metrics.json": summary.encode("utf-8"),
                        out / f"{prefix}_confusion.png": png.getvalue()})
    return text


def evaluate(run: ClassifierRun, spec: str | None, out: Path) -> dict:
    """Score ``run`` on a labelled file (``spec``; default the config's ``data.test``), print the report and
    write ``test_report.txt``, ``test_metrics.json`` and ``test_confusion.png`` into ``out``."""
    spec = spec or run.cfg.data.test
    if spec is None:
        raise ValueError(f"{run.run_dir}: the run's config has no data.test; pass --data FILE")
    split, num_bad = load_split(run.cfg, run.vocab, run.labels, spec)
    metrics, cm = evaluate_split(run.model, split, run.labels, run.hierarchical, run.cfg.data.eval_batch_size,
                                 run.device)
    metrics["bad_rows_skipped"] = num_bad
    metrics["data"] = spec
    text = write_report(metrics, cm, run.labels, out, "test")
    print(text, end="")
    if num_bad:
        print(f"skipped {num_bad} bad rows")
    print(f"wrote {out / 'test_report.txt'}, {out / 'test_metrics.json'}, {out / 'test_confusion.png'}")
    return metrics


def read_lines(source: str, stdin: TextIO | None = None) -> list[str]:
    """The lines of text file ``source`` ("-": ``stdin``, default ``sys.stdin``), split at ``\\n`` only (a
    ``\\r\\n`` ending loses its ``\\r``; other separators such as form feeds stay inside their line), so that
    result ``i`` of a prediction command belongs to input line ``i``. Raises ``FileNotFoundError`` for a
    missing file and ``ValueError`` for invalid UTF-8 (naming the line)."""
    if source == "-":
        stream = sys.stdin if stdin is None else stdin
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: input file not found")
        data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append(line.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{source}: line {number}: invalid UTF-8 (byte {e.start}: {e.reason})") from None
    return out


def read_documents(source: str, stdin: TextIO | None = None) -> list[str]:
    """The lines of ``source`` (see :func:`read_lines`), one document each; blank lines are kept (they get a
    blank result). Raises ``ValueError`` when no line holds a document."""
    lines = read_lines(source, stdin)
    if not any(line.strip() for line in lines):
        raise ValueError(f"{source}: no documents (one non-empty line per document)")
    return lines


def predict(run: ClassifierRun, texts: list[str], explain: Path | None = None) -> list[Explanation | None]:
    """Label ``texts`` (one document each; a blank text gets ``None``): print ``label<TAB>probability<TAB>
    label=p ...`` per text, an empty line for a blank one, so output line ``i`` belongs to input line ``i``.
    With ``explain`` also write ``PREFIX.jsonl`` (one record per text, every token's attention weight) and
    ``PREFIX.html`` (highlighted tokens): both or neither, before anything is printed."""
    filled = [i for i, t in enumerate(texts) if t.strip()]
    explanations: list[Explanation | None] = [None] * len(texts)
    for i, ex in zip(filled, run.explain([texts[i] for i in filled])):
        explanations[i] = ex
    if explain is not None:
        prefix = explain.with_suffix("") if explain.suffix in (".html", ".jsonl") else explain
        jsonl, page = Path(f"{prefix}.jsonl"), Path(f"{prefix}.html")
        atomic_write_files({jsonl: jsonl_text(explanations).encode("utf-8"),
                            page: html_text(explanations, title=f"attention explanations: {run.run_dir}").encode()})
        print(f"wrote {jsonl} and {page}", file=sys.stderr)
    for ex in explanations:
        if ex is None:
            print()
            continue
        probs = " ".join(f"{k}={v:.4f}" for k, v in ex.probabilities.items())
        print(f"{ex.label}\t{ex.probabilities[ex.label]:.4f}\t{probs}")
    return explanations
