"""Token attributions of a classifier's prediction, one score per token of an :class:`EncodedDoc`:

- ``attention``: the model's own attention weight (HAN: word weight times its sentence's weight);
- ``integrated_gradients``: Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep
  Networks") of the target class probability with respect to the token embeddings, through captum's
  ``LayerIntegratedGradients`` on ``model.embed``, from the all-padding baseline (zero embeddings), summed over
  the embedding dimensions; the scores add up to ``p(x) - p(baseline)`` up to the Riemann error;
- ``occlusion``: leave-one-out (Li et al., 2016, "Understanding Neural Networks through Representation
  Erasure"): ``p(y | x) - p(y | x without token i)``, the token deleted from the sequence;
- ``random``: a seeded uniform ranking, the floor any explanation should beat.

Deleting tokens (occlusion here, comprehensiveness and sufficiency in :mod:`.faithfulness`) goes through
:func:`keep_tokens`, which keeps the sentence structure HAN needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .models import ClassifierOutput
from .task import collate_docs, predict_docs
from .text import EncodedDoc

METHODS = ("attention", "integrated_gradients", "occlusion", "random")


def keep_tokens(doc: EncodedDoc, keep: np.ndarray) -> EncodedDoc:
    """``doc`` with only the tokens where ``keep`` (bool, (num_tokens,)) is True, in order; sentences that
    lose all their tokens are dropped."""
    keep = np.asarray(keep, dtype=bool)
    sentence_of = np.repeat(np.arange(len(doc.sentence_lengths)), doc.sentence_lengths)  # (T,)
    lengths = np.bincount(sentence_of[keep], minlength=len(doc.sentence_lengths)).astype(np.int32)
    return EncodedDoc(doc.ids[keep], lengths[lengths > 0], [t for t, k in zip(doc.tokens, keep) if k])


class Scorer:
    """Class probabilities of a classifier for many (perturbed) documents, batched."""

    def __init__(self, model: nn.Module, hierarchical: bool, device: torch.device | str = "cpu",
                 batch_size: int = 256) -> None:
        self.model, self.hierarchical = model.eval(), hierarchical
        self.device, self.batch_size = torch.device(device), batch_size

    def outputs(self, docs: Sequence[EncodedDoc]) -> list[ClassifierOutput]:
        return predict_docs(self.model, docs, self.hierarchical, self.batch_size, self.device)

    def probs(self, docs: Sequence[EncodedDoc]) -> np.ndarray:
        """(N, C) softmax probabilities."""
        if not docs:
            return np.zeros((0, 0))
        logits = torch.stack([o.logits for o in self.outputs(docs)])
        return torch.softmax(logits.double(), -1).numpy()


def attention_scores(out: ClassifierOutput, doc: EncodedDoc, hierarchical: bool) -> np.ndarray:
    """(T,) document-level attention weight of each token (one unbatched output ``out``)."""
    if not hierarchical:
        return out.token_weights[: len(doc.ids)].double().numpy()
    sw = out.sentence_weights.double().numpy()  # (S,)
    ww = out.token_weights.double().numpy()  # (S, W)
    return np.concatenate([ww[s, :n] * sw[s] for s, n in enumerate(doc.sentence_lengths.tolist())] or [[]])


def occlusion_scores(scorer: Scorer, doc: EncodedDoc, target: int, p_full: float | None = None) -> np.ndarray:
    """(T,) leave-one-out drop of the target probability when each token is deleted."""
    n = len(doc.ids)
    if n == 0:
        return np.zeros(0)
    if p_full is None:
        p_full = float(scorer.probs([doc])[0, target])
    variants = [keep_tokens(doc, np.arange(n) != i) for i in range(n)]
    return p_full - scorer.probs(variants)[:, target]


def integrated_gradients_scores(model: nn.Module, doc: EncodedDoc, target: int, hierarchical: bool,
                                device: torch.device | str = "cpu", steps: int = 20) -> np.ndarray:
    """(T,) Integrated Gradients of ``p(target)`` per token (captum ``LayerIntegratedGradients`` on
    ``model.embed``, ``steps`` Gauss-Legendre points, all-padding baseline)."""
    from captum.attr import LayerIntegratedGradients

    if len(doc.ids) == 0:
        return np.zeros(0)
    batch = {k: v.to(device) for k, v in collate_docs([doc], hierarchical).items()}
    tokens = batch.pop("tokens")
    extra_name, extra = next(iter(batch.items()))

    def forward(tok: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(tok, other).logits.float(), -1)  # (N, C)

    model.eval()
    lig = LayerIntegratedGradients(forward, model.embed)
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN RNNs have no backward in eval mode
        attr = lig.attribute(tokens, baselines=torch.zeros_like(tokens), target=target,
                             additional_forward_args=(extra,), n_steps=steps, internal_batch_size=steps)
    # The embedding's output is (1, T, E) for flat models and (S, W, E) for HAN (sentences as the batch).
    per_position = attr.sum(-1).detach().double().cpu().numpy()  # (1, T) or (S, W)
    if not hierarchical:
        return per_position[0, : len(doc.ids)]
    return np.concatenate([per_position[s, :n] for s, n in enumerate(doc.sentence_lengths.tolist())])


def random_scores(doc: EncodedDoc, rng: np.random.Generator) -> np.ndarray:
    """(T,) uniform random scores: a random ranking of the tokens."""
    return rng.random(len(doc.ids))


def attributions(model: nn.Module, doc: EncodedDoc, hierarchical: bool, scorer: Scorer | None = None,
                 device: torch.device | str = "cpu", ig_steps: int = 20, rng: np.random.Generator | None = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The probabilities (C,) of ``doc`` and every method's (T,) scores for its predicted class."""
    scorer = scorer or Scorer(model, hierarchical, device)
    out = scorer.outputs([doc])[0]
    probs = torch.softmax(out.logits.double(), -1).numpy()
    target = int(probs.argmax())
    scores = {"attention": attention_scores(out, doc, hierarchical),
              "integrated_gradients": integrated_gradients_scores(model, doc, target, hierarchical, device, ig_steps),
              "occlusion": occlusion_scores(scorer, doc, target, float(probs[target]))}
    if rng is not None:
        scores["random"] = random_scores(doc, rng)
    return probs, scores
