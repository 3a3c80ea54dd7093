"""Corpus scores with sacrebleu (Post, 2018) on detokenized text: BLEU, chrF and TER, each with its signature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class CorpusScore:
    """One corpus-level metric (BLEU, chrF or TER) of a test set: its ``value``, sacrebleu's rendering and the
    signature that makes it reproducible."""

    name: str
    value: float
    text: str  # sacrebleu's own one-line rendering, e.g. "BLEU = 35.20 67.1/42.0/..."
    signature: str


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str],
                  metrics: Sequence[str] = ("bleu", "chrf", "ter")) -> list[CorpusScore]:
    """Score detokenized ``hypotheses`` against one reference each (cased, sacrebleu's default 13a tokenizer)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return corpus_scores_multi(hypotheses, [[r] for r in references], metrics)


def corpus_scores_multi(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                        metrics: Sequence[str] = ("bleu", "chrf", "ter")) -> list[CorpusScore]:
    """Score ``hypotheses`` against several references each (``references[i]``: those of hypothesis ``i``, at
    least one; image captions). Counts may differ between hypotheses (the signature then says ``nrefs:var``)."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    most = max((len(refs) for refs in references), default=1)
    # sacrebleu's layout: one stream per reference slot, None where a hypothesis has fewer references
    streams = [[refs[j] if j < len(refs) else None for refs in references] for j in range(most)]
    table = {"bleu": BLEU, "chrf": CHRF, "ter": TER}
    scores = []
    for name in metrics:
        metric = table[name]()
        result = metric.corpus_score(list(hypotheses), streams)
        scores.append(CorpusScore(name, float(result.score), str(result), str(metric.get_signature())))
    return scores


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return corpus_scores(hypotheses, references, ("bleu",))[0].value
