"""Accuracy, macro-F1, per-class precision/recall and the confusion matrix (as text and PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of documents of true class ``i`` predicted as ``j``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def report(cm: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support from a confusion matrix.

    A class never predicted has precision 0 (and one never present has recall 0), as in scikit-learn's
    ``zero_division=0``.
    """
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "num_docs": int(total),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
    }


def format_report(metrics: dict, cm: np.ndarray, labels: list[str]) -> str:
    """A plain-text table of the per-class figures followed by the confusion matrix."""
    width = max(8, *(len(n) for n in labels))
    lines = [f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
             f"documents {metrics['num_docs']}", "",
             f"{'class':<{width}}  precision  recall     f1  support"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}  {m['support']:7d}")
    cell = max(6, *(len(str(v)) for v in cm.flatten()), *(len(n) for n in labels))
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "  " + " ".join(f"{n:>{cell}}" for n in labels)]
    for name, row in zip(labels, cm):
        lines.append(f"{name:<{width}}  " + " ".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines) + "\n"


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path | BinaryIO, title: str = "confusion matrix") -> None:
    """Row-normalized confusion matrix as a PNG, with the counts in the cells, into ``path`` (a file name or
    a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(2.0 + 0.7 * n, 1.6 + 0.6 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    if isinstance(path, (str, Path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
