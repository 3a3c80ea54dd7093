"""Decoding and scoring captions: the translation search over images, sacrebleu BLEU/chrF against all the
captions of an image, word accuracy and attention correctness (Liu et al., 2017).

Definitions (every evaluation reports them side by side):

- BLEU-4 and chrF: sacrebleu on the space-joined words, every caption of an image a reference
  (:func:`~seq2seq_attn.translation.metrics.corpus_scores_multi`, with signatures).
- word accuracy (%): position by position against the image's closest reference (the one with the most
  matching positions); a position counts as correct when both have the same word there, the denominator is
  ``max(len(hypothesis), len(reference))``, so missing and extra words are errors. Summed over the images.
- attention correctness: the share of the attention mass alpha_t (over the h x w grid, upsampled to the image)
  inside the box of the word being generated, averaged over every reference word that has a box, with the
  model teacher-forced on that reference caption (Liu et al., 2017, "Attention Correctness in Neural Image
  Captioning": the ground-truth word's box is then the box of the word being generated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..translation.config import SearchOptions
from ..translation.metrics import CorpusScore, corpus_scores_multi
from ..translation.search import Hypothesis, search
from ..translation.subwords import BOS, EOS, PAD
from ..translation.task import label_smoothed_nll


def pad_captions(captions: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids (no BOS/EOS) -> ``tgt_in`` = BOS + ids and ``tgt_out`` = ids + EOS, both (B, T) padded with PAD."""
    length = max(len(c) for c in captions) + 1
    tgt_in = torch.full((len(captions), length), PAD, dtype=torch.long)
    tgt_out = torch.full((len(captions), length), PAD, dtype=torch.long)
    for i, c in enumerate(captions):
        ids = torch.tensor(c, dtype=torch.long)
        tgt_in[i, 0] = BOS
        tgt_in[i, 1:len(c) + 1] = ids
        tgt_out[i, :len(c)] = ids
        tgt_out[i, len(c)] = EOS
    return tgt_in, tgt_out


@torch.no_grad()
def search_images(model: nn.Module, images: torch.Tensor, device: torch.device | str, max_words: int,
                  beam_size: int = 1, n_best: int = 1, options: SearchOptions | None = None, batch_size: int = 100,
                  generator: torch.Generator | None = None) -> list[list[Hypothesis]]:
    """The translation search on uint8 ``images`` (N, C, H, W) in batches: per image its ``n_best`` hypotheses
    (tokens without BOS/EOS, score, attention (len(tokens) + 1, L)), best first. ``max_words``: most words
    before EOS (forced there)."""
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        mask = model.source_mask(x)
        results += search(model, x, mask, BOS, EOS, max_words, beam_size, n_best,
                          options or SearchOptions(alpha=0.0), generator=generator)
    model.train(was_training)
    return results


def word_accuracy(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
                  ) -> tuple[int, int]:
    """(correct, total) word positions of ``hypotheses`` against each one's closest reference (see the module
    doc); ``references[i]``: the captions (word lists) of image ``i``."""
    correct = total = 0
    for hyp, refs in zip(hypotheses, references):
        best = max(refs, key=lambda ref: (sum(a == b for a, b in zip(hyp, ref)), -len(ref)))
        correct += sum(a == b for a, b in zip(hyp, best))
        total += max(len(hyp), len(best))
    return correct, total


def caption_scores(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
                   ) -> list[CorpusScore]:
    """sacrebleu BLEU and chrF of the word lists against all the references of each image."""
    return corpus_scores_multi([" ".join(h) for h in hypotheses],
                               [[" ".join(r) for r in refs] for refs in references], ("bleu", "chrf"))


@torch.no_grad()
def teacher_forced(model: nn.Module, images: torch.Tensor, captions: Sequence[list[int]], device: torch.device | str
                   ) -> tuple[float, int, torch.Tensor]:
    """Summed NLL, token count and attention alpha (B, T, L) (on the CPU) of ``captions`` (word ids, one per
    image) under teacher forcing, in eval mode."""
    tgt_in, tgt_out = pad_captions(captions)
    x = images.to(device)
    logits, alphas = model(x, model.source_mask(x), tgt_in.to(device), return_attention=True)
    nll = float(label_smoothed_nll(logits, tgt_out.to(device), 0.0)[1])
    return nll, int((tgt_out != PAD).sum()), alphas.float().cpu()


def word_correctness(alphas: torch.Tensor, boxes: Sequence[Sequence[Any]], lengths: Sequence[int],
                     grid: tuple[int, int], image_size: tuple[int, int]) -> list[torch.Tensor]:
    """Per caption the attention correctness of each word (:func:`~.correctness.attention_correctness`, NaN for a
    word without a box): ``alphas`` (B, T, L) of captions whose word ``t`` has box ``boxes[b][t]`` (or None),
    ``lengths[b]`` words each."""
    from .correctness import attention_correctness

    return [attention_correctness(alphas[b, :n].reshape(n, *grid), list(caption_boxes[:n]), image_size)
            for b, (caption_boxes, n) in enumerate(zip(boxes, lengths)) if n > 0]


def finish_metrics(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                   nll: float, tokens: int, correctness: Sequence[torch.Tensor]
                   ) -> tuple[dict[str, float], list[CorpusScore]]:
    """The metrics dict of one evaluation (see the module doc; ``attn_correctness``, the mean over the words of
    ``correctness`` that have a box, only when some word has one) and sacrebleu's BLEU and chrF with their
    signatures."""
    from .correctness import mean_attention_correctness

    correct, total = word_accuracy(hypotheses, references)
    bleu, chrf = caption_scores(hypotheses, references)
    loss = nll / max(1, tokens)
    metrics = {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu.value, "chrf": chrf.value,
               "word_acc": 100.0 * correct / max(1, total),
               "exact": 100.0 * sum(any(list(h) == list(r) for r in refs) for h, refs in zip(hypotheses, references))
               / max(1, len(hypotheses))}
    mean, boxed = mean_attention_correctness(correctness)
    if boxed:
        metrics["attn_correctness"] = mean
    return metrics, [bleu, chrf]
