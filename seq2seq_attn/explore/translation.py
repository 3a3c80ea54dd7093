"""The translation view's data: per sentence its source and output pieces, the n-best list, and every
attention matrix of the best hypothesis (RNN cross-attention; Transformer encoder self-, decoder self- and
cross-attention of every layer and head), captured with ``capture_attention`` during one teacher-forced pass
(:func:`seq2seq_attn.translation.attention_export.attention_maps`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .page import quantize, rounded

KIND_NOTES = {
    "cross": "cross-attention: queries are output pieces, keys source pieces",
    "encoder": "encoder self-attention: source pieces attend to source pieces",
    "decoder": "decoder self-attention: output pieces attend to earlier output pieces",
}


def attention_kind(name: str) -> str:
    """Which attention a recorded module is, from its name: encoder self-attention (under an encoder),
    decoder self-attention (a ``self`` attention elsewhere), else the decoder's cross-attention."""
    if "encoder" in name:
        return "encoder"
    return "decoder" if "self" in name else "cross"


def group_maps(maps: dict[str, np.ndarray], src_len: int, tgt_len: int) -> dict[str, list[dict]]:
    """Recorded ``{name: (heads, queries, keys)}`` arrays -> ``{kind: [{name, shape, data}, ...]}`` in model
    order, with each matrix cut to the pieces shown (``src_len`` source and ``tgt_len`` output pieces, both
    counting EOS) and quantized to one byte per weight."""
    out: dict[str, list[dict]] = {"cross": [], "encoder": [], "decoder": []}
    for name, w in maps.items():
        kind = attention_kind(name)
        q_len, k_len = {"cross": (tgt_len, src_len), "encoder": (src_len, src_len),
                        "decoder": (tgt_len, tgt_len)}[kind]
        if w.ndim != 3 or w.shape[1] < q_len or w.shape[2] < k_len:
            continue  # not a (heads, queries, keys) map over these pieces
        w = w[:, :q_len, :k_len]
        out[kind].append({"name": name, "shape": list(w.shape), "data": quantize(w)})
    return out


def translation_data(run, sources: Sequence[str], beam_size: int | None = None, n_best: int = 5) -> dict:
    """Page data for ``sources`` (non-empty sentences) translated by a loaded run
    (:func:`seq2seq_attn.translation.lifecycle.load_run`)."""
    from ..translation.attention_export import attention_maps

    beam = run.cfg.decoding.beam_size if beam_size is None else beam_size
    n_best = max(1, min(n_best, beam))
    hyps = run.translate(list(sources), beam, n_best)
    sentences = []
    for source, hyp_list in zip(sources, hyps):
        best = hyp_list[0]
        src_ids = run.vocabs.encode_src([source])[0]
        src = [*run.vocabs.src.encode(source, out_type=str), "</s>"]
        tgt = [*(run.vocabs.tgt.id_to_piece(t) for t in best.tokens), "</s>"]
        maps = attention_maps(run.model, src_ids, best.tokens, run.device)
        nbest = [{"text": run.detok(h.tokens), "score": rounded([h.score])[0], "log_prob": rounded([h.log_prob])[0]}
                 for h in hyp_list]
        sentences.append({"source": source, "src": src, "tgt": tgt, "nbest": nbest,
                          "maps": group_maps(maps, len(src), len(tgt))})
    notes = (f"{len(sentences)} sentences, beam {beam}. Weights are stored as bytes (w = q/255, error <= 0.002). "
             "Hover a query token to shade the keys by its weights, or a key token to shade the queries. "
             "Merged words: a word's weight as a key is the SUM of its pieces' weights; its row as a query is the "
             "AVERAGE of its pieces' rows (so each row still sums to one).")
    return {"notes": notes, "kinds": KIND_NOTES, "sentences": sentences}
