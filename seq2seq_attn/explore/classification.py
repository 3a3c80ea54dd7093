"""The classification view's data: per document its tokens, predicted label and probabilities, and three
attributions of the prediction on the same tokens: the attention weights (HAN: and the sentence weights),
Integrated Gradients (captum) and leave-one-out occlusion (:mod:`seq2seq_attn.classification.attribution`),
with their rank agreement (Kendall's tau)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .page import rounded


def classification_data(run, texts: Sequence[str], ig_steps: int = 20) -> dict:
    """Page data for ``texts`` classified by a loaded run (:func:`seq2seq_attn.classification.lifecycle.load_run`)."""
    from ..classification.attribution import Scorer, attributions
    from ..classification.faithfulness import rank_agreement

    hier = run.hierarchical
    scorer = Scorer(run.model, hier, run.device, run.cfg.data.eval_batch_size)
    docs = []
    for text, doc in zip(texts, run.encode(list(texts))):
        probs, scores = attributions(run.model, doc, hier, scorer, run.device, ig_steps)
        out = scorer.outputs([doc])[0]
        bounds = np.concatenate([[0], np.cumsum(doc.sentence_lengths)]).astype(int).tolist()
        agree = {m: rank_agreement(scores["attention"], scores[m])[0] for m in ("integrated_gradients", "occlusion")}
        docs.append({
            "text": text, "tokens": doc.tokens, "label": run.labels[int(probs.argmax())],
            "probs": dict(zip(run.labels, rounded(probs))),
            "sentences": [[a, b] for a, b in zip(bounds[:-1], bounds[1:])],
            "sentence_weights": rounded(out.sentence_weights[: len(doc.sentence_lengths)]) if hier else None,
            "methods": {m: rounded(v, 5) for m, v in scores.items()},
            "kendall": {m: (None if np.isnan(v) else round(v, 3)) for m, v in agree.items()},
        })
    notes = ("Each column shades the same tokens by one attribution of the predicted class: attention weight "
             "(relative to the document's largest), Integrated Gradients of the class probability (captum, "
             f"{ig_steps} steps, zero-embedding baseline) and leave-one-out occlusion (drop of the class "
             "probability when the token is deleted). Red: for the prediction, blue: against it. Hover a token "
             "to see its three scores. " + ("Blue bars: sentence attention weights (HAN)." if hier else ""))
    return {"notes": notes, "hierarchical": hier, "docs": docs,
            "method_names": {"attention": "attention", "integrated_gradients": "Integrated Gradients",
                             "occlusion": "occlusion (leave one out)"}}
