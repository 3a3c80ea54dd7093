"""Is the attention a faithful explanation? ERASER's faithfulness metrics (DeYoung et al., 2020, "ERASER: A
Benchmark to Evaluate Rationalized NLP Models") for token rankings of a trained classifier.

For a document x, its predicted class y and a ranking of its tokens, let r_k be the top k % of the tokens
(``ceil(k/100 * T)`` of them, at least one; ties keep the earlier token first):

- comprehensiveness(k) = p(y | x) - p(y | x without r_k): a faithful ranking removes what the prediction
  needed, so the probability falls (higher is better);
- sufficiency(k) = p(y | x) - p(y | r_k alone): a faithful ranking keeps enough to predict (lower is better);
- AOPC (area over the perturbation curve) = sum over the bins k in {1, 5, 10, 20, 50} of the value at k,
  divided by |bins| + 1 (the k = 0 bin contributes 0), as in ERASER's definition.

Tokens are deleted from the sequence (HAN keeps the remaining sentence structure). The rankings compared
are the model's attention, Integrated Gradients, leave-one-out occlusion and a random ranking
(:mod:`.attribution`); the rank agreement of attention with the gradient-based methods is Kendall's tau-b
and Spearman's rho per document (documents of fewer than 3 tokens or with constant scores are skipped),
averaged over the documents.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .attribution import METHODS, Scorer, attributions, keep_tokens
from .text import EncodedDoc

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
PAIRS = (("attention", "integrated_gradients"), ("attention", "occlusion"), ("integrated_gradients", "occlusion"))


def top_k_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """(T,) bool: the ``ceil(fraction * T)`` highest-scoring tokens (at least one; earlier first on ties)."""
    n = len(scores)
    k = min(n, max(1, math.ceil(fraction * n - 1e-9)))
    mask = np.zeros(n, dtype=bool)
    mask[np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]] = True
    return mask


def perturbation_curves(scorer: Scorer, doc: EncodedDoc, target: int, p_full: float, scores: np.ndarray,
                        bins: Sequence[float] = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Comprehensiveness and sufficiency of one ranking at every bin: two (len(bins),) arrays."""
    masks = [top_k_mask(scores, b) for b in bins]
    variants = [keep_tokens(doc, ~m) for m in masks] + [keep_tokens(doc, m) for m in masks]
    p = scorer.probs(variants)[:, target]
    return p_full - p[: len(bins)], p_full - p[len(bins):]


def aopc(values: np.ndarray) -> float:
    """ERASER's AOPC of one curve over the bins: ``sum(values) / (len(bins) + 1)``."""
    return float(np.sum(values) / (len(values) + 1))


def rank_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Kendall's tau-b and Spearman's rho of two score vectors (NaN when undefined)."""
    from scipy.stats import kendalltau, spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    return float(kendalltau(a, b).statistic), float(spearmanr(a, b).statistic)


@dataclass
class FaithfulnessResult:
    """Mean curves per method (``comprehensiveness[m]``, ``sufficiency[m]``: (len(bins),)) over ``num_docs``
    documents, their AOPCs, and the mean rank agreement per method pair (tau, rho, documents counted)."""

    bins: tuple[float, ...]
    num_docs: int
    comprehensiveness: dict[str, np.ndarray] = field(default_factory=dict)
    sufficiency: dict[str, np.ndarray] = field(default_factory=dict)
    agreement: dict[tuple[str, str], tuple[float, float, int]] = field(default_factory=dict)

    def aopc(self, method: str) -> tuple[float, float]:
        return aopc(self.comprehensiveness[method]), aopc(self.sufficiency[method])


def evaluate_faithfulness(model: nn.Module, docs: Sequence[EncodedDoc], hierarchical: bool,
                          device: torch.device | str = "cpu", ig_steps: int = 20, seed: int = 0,
                          bins: Sequence[float] = BINS, batch_size: int = 256) -> FaithfulnessResult:
    """Comprehensiveness, sufficiency (per bin) and rank agreement of every method over ``docs``, for the
    model's predicted class of each document. Documents without tokens are skipped."""
    scorer = Scorer(model, hierarchical, device, batch_size)
    rng = np.random.default_rng(seed)
    comp = {m: [] for m in METHODS}
    suff = {m: [] for m in METHODS}
    agree: dict[tuple[str, str], list[tuple[float, float]]] = {pair: [] for pair in PAIRS}
    for doc in docs:
        if len(doc.ids) == 0:
            continue
        probs, scores = attributions(model, doc, hierarchical, scorer, device, ig_steps, rng)
        target = int(probs.argmax())
        for m in METHODS:
            c, s = perturbation_curves(scorer, doc, target, float(probs[target]), scores[m], bins)
            comp[m].append(c)
            suff[m].append(s)
        for a, b in PAIRS:
            tau, rho = rank_agreement(scores[a], scores[b])
            if not math.isnan(tau):
                agree[(a, b)].append((tau, rho))
    result = FaithfulnessResult(tuple(bins), len(comp["attention"]))
    for m in METHODS:
        result.comprehensiveness[m] = np.mean(comp[m], axis=0) if comp[m] else np.full(len(bins), np.nan)
        result.sufficiency[m] = np.mean(suff[m], axis=0) if suff[m] else np.full(len(bins), np.nan)
    for pair, values in agree.items():
        arr = np.asarray(values).reshape(-1, 2)
        result.agreement[pair] = (*(arr.mean(0).tolist() if len(arr) else [math.nan, math.nan]), len(arr))
    return result


def markdown_table(result: FaithfulnessResult) -> str:
    """Two Markdown tables: AOPC and per-bin values per method, then the rank agreement per method pair."""
    bins = " | ".join(f"{100 * b:g}%" for b in result.bins)
    lines = [f"| method | comprehensiveness AOPC (higher = more faithful) | sufficiency AOPC (lower = more "
             f"faithful) | comprehensiveness at {bins.replace(' | ', ', ')} | sufficiency at the same |",
             "| --- | --- | --- | --- | --- |"]
    for m in METHODS:
        c, s = result.aopc(m)
        lines.append(f"| {m} | {c:.4f} | {s:.4f} | {', '.join(f'{v:.3f}' for v in result.comprehensiveness[m])} | "
                     f"{', '.join(f'{v:.3f}' for v in result.sufficiency[m])} |")
    lines += ["", "| rank agreement | Kendall tau | Spearman rho | documents |", "| --- | --- | --- | --- |"]
    for (a, b), (tau, rho, n) in result.agreement.items():
        lines.append(f"| {a} vs {b} | {tau:.3f} | {rho:.3f} | {n} |")
    return "\n".join(lines) + "\n"


def write_csv(result: FaithfulnessResult, path: Path) -> None:
    """One row per (method, bin) with comprehensiveness and sufficiency, plus the AOPC rows (bin ``aopc``)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "bin", "comprehensiveness", "sufficiency"])
        for m in METHODS:
            for b, c, s in zip(result.bins, result.comprehensiveness[m], result.sufficiency[m]):
                w.writerow([m, b, f"{c:.6f}", f"{s:.6f}"])
            c, s = result.aopc(m)
            w.writerow([m, "aopc", f"{c:.6f}", f"{s:.6f}"])


def plot_curves(result: FaithfulnessResult, path: Path, title: str) -> None:
    """Comprehensiveness and sufficiency against the share of tokens, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    x = [100 * b for b in result.bins]
    for m in METHODS:
        axes[0].plot(x, result.comprehensiveness[m], marker="o", label=m)
        axes[1].plot(x, result.sufficiency[m], marker="o", label=m)
    for ax, name in zip(axes, ("comprehensiveness (higher = more faithful)", "sufficiency (lower = more faithful)")):
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_xlabel("top k % of tokens")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title} ({result.num_docs} documents)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_faithfulness(run, spec: str | None, out: Path, limit: int | None = None, ig_steps: int = 20,
                     seed: int = 0) -> FaithfulnessResult:
    """Evaluate a loaded classifier (:func:`seq2seq_attn.classification.lifecycle.load_run`) on a labelled
    file (``spec``; default the config's ``data.test``), or on a random subset of ``limit`` of its documents
    (seeded with ``seed``); write ``faithfulness.md``, ``.csv`` and ``.png`` into ``out`` and print the table."""
    from .task import load_split

    spec = spec or run.cfg.data.test
    if spec is None:
        raise ValueError(f"{run.run_dir}: the run's config has no data.test; pass --split FILE")
    split, _ = load_split(run.cfg, run.vocab, run.labels, spec)
    docs = split.docs
    if limit is not None and limit < len(docs):
        docs = [docs[i] for i in np.sort(np.random.default_rng(seed).permutation(len(docs))[:limit])]
    result = evaluate_faithfulness(run.model, docs, run.hierarchical, run.device, ig_steps, seed,
                                   batch_size=run.cfg.data.eval_batch_size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = f"faithfulness of {run.run_dir} on {spec}: {result.num_docs} documents\n\n"
    table = markdown_table(result)
    (out / "faithfulness.md").write_text(header + table, encoding="utf-8")
    write_csv(result, out / "faithfulness.csv")
    plot_curves(result, out / "faithfulness.png", f"{Path(run.run_dir).name}: {run.cfg.model.type}")
    print(header + table, end="")
    print(f"wrote {out / 'faithfulness.md'}, {out / 'faithfulness.csv'}, {out / 'faithfulness.png'}")
    return result
