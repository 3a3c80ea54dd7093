"""Transformer translation runs in CTranslate2 (Klein et al., 2020, https://github.com/OpenNMT/CTranslate2).

:func:`transformer_spec` fills CTranslate2's Python spec (``TransformerSpec`` of a ``TransformerEncoderSpec``
and a ``TransformerDecoderSpec``) from a :class:`~seq2seq_attn.translation.models.transformer.TransformerSeq2Seq`:
pre- or post-LN, tied or separate embeddings, sinusoidal or learned positions (the position table is written
out, so CTranslate2 uses exactly ours). :func:`export_ctranslate2` writes a self-contained directory: the
CTranslate2 model (``model.bin``, ``config.json``, vocabularies), the run's ``config.yaml`` and its
sentencepiece model(s). :class:`CT2Run` translates with it behind the ``translate``/``detok`` interface of
:class:`~seq2seq_attn.translation.lifecycle.TranslationRun`, so ``translate --engine ctranslate2`` and the
server use it unchanged.

Decoding matches ours: the source is its pieces + ``</s>``, the decoder starts from ``<s>``, the maximum output
length is ``max_len_a * source length + max_len_b``. CTranslate2 ranks finished hypotheses by
``log p / length ** alpha``; our GNMT penalty ``((5 + length) / 6) ** alpha`` differs, so :class:`CT2Run` asks
for all ``beam`` hypotheses with raw log-probabilities and ranks them with the GNMT penalty itself.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..training.lifecycle import load_task_config
from ..translation.config import SearchOptions, TranslationConfig
from ..translation.search import Hypothesis, length_penalty
from ..translation.subwords import Vocabs
from .files import atomic_output_dir

MODEL_FILE = "model.bin"


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).contiguous().numpy()


def _linear(spec, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    spec.weight = _array(weight)
    if bias is not None:
        spec.bias = _array(bias)


def _norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _attention(spec, mha, self_attention: bool) -> None:
    """Our ``in_proj_weight`` rows are [query; key; value], CTranslate2's fused layout: self-attention takes
    all three in ``linear[0]``, cross-attention the query in ``linear[0]`` and [key; value] in ``linear[1]``."""
    if mha.in_proj_weight is None:
        raise ValueError("CTranslate2 export needs attention with equal query, key and value sizes")
    w, b, e = mha.in_proj_weight, mha.in_proj_bias, mha.embed_dim
    if self_attention:
        _linear(spec.linear[0], w, b)
    else:
        _linear(spec.linear[0], w[:e], None if b is None else b[:e])
        _linear(spec.linear[1], w[e:], None if b is None else b[e:])
    _linear(spec.linear[-1], mha.out_proj.weight, mha.out_proj.bias)


def _positions(model) -> np.ndarray:
    """(max_positions, D): the table our model adds to the embeddings (row 0 = first position)."""
    pos = model.positions
    return _array(pos.table if pos.kind == "sinusoidal" else pos.embedding.weight)


def transformer_spec(model, src_pieces: Sequence[str], tgt_pieces: Sequence[str]):
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights and the two vocabularies (lists of
    pieces by id). Raises ValueError for what CTranslate2 cannot express (post-LN with a final LayerNorm)."""
    from ctranslate2.specs import common_spec
    from ctranslate2.specs import transformer_spec as ts

    cfg = model.config
    final_norm = not isinstance(model.encoder_norm, nn.Identity)
    if final_norm and not cfg.norm_first:
        raise ValueError("CTranslate2 has no final LayerNorm in post-LN Transformers (model.transformer."
                         "final_norm: true with norm_first: false)")
    activation = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU}[cfg.activation]
    common = dict(pre_norm=cfg.norm_first, no_final_norm=not final_norm, activation=activation)
    encoder = ts.TransformerEncoderSpec(cfg.encoder_layers, cfg.heads, **common)
    decoder = ts.TransformerDecoderSpec(cfg.decoder_layers, cfg.heads, alignment_layer=model.alignment_layer,
                                        alignment_heads=cfg.heads, **common)
    for side, emb in ((encoder, model.src_embed), (decoder, model.tgt_embed)):
        side.scale_embeddings = bool(cfg.scale_embeddings)
        side.position_encodings.encodings = _positions(model)
        (side.embeddings[0] if isinstance(side.embeddings, list) else side.embeddings).weight = _array(emb.weight)
    if final_norm:
        _norm(encoder.layer_norm, model.encoder_norm)
        _norm(decoder.layer_norm, model.decoder_norm)
    for spec, layer in zip(encoder.layer, model.encoder_layers):
        _attention(spec.self_attention, layer.self_attn, True)
        _norm(spec.self_attention.layer_norm, layer.norm1)
        _norm(spec.ffn.layer_norm, layer.norm2)
        _linear(spec.ffn.linear_0, layer.linear1.weight, layer.linear1.bias)
        _linear(spec.ffn.linear_1, layer.linear2.weight, layer.linear2.bias)
    for spec, layer in zip(decoder.layer, model.decoder_layers):
        _attention(spec.self_attention, layer.self_attn, True)
        _attention(spec.attention, layer.multihead_attn, False)
        _norm(spec.self_attention.layer_norm, layer.norm1)
        _norm(spec.attention.layer_norm, layer.norm2)
        _norm(spec.ffn.layer_norm, layer.norm3)
        _linear(spec.ffn.linear_0, layer.linear1.weight, layer.linear1.bias)
        _linear(spec.ffn.linear_1, layer.linear2.weight, layer.linear2.bias)
    _linear(decoder.projection, model.output_projection.weight, model.output_projection.bias)
    spec = ts.TransformerSpec(encoder, decoder)
    spec.config.layer_norm_epsilon = cfg.layer_norm_eps
    spec.config.add_source_eos = True  # our encoder input is pieces + </s>
    spec.config.decoder_start_token = "<s>"
    spec.register_source_vocabulary(list(src_pieces))
    spec.register_target_vocabulary(list(tgt_pieces))
    return spec


def _pieces(sp) -> list[str]:
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def export_ctranslate2(run_dir: str | Path, out: str | Path, which: str = "best", quantization: str | None = None,
                       overwrite: bool = False) -> Path:
    """Convert a Transformer translation run into the CTranslate2 directory ``out`` (written complete or not
    at all). ``quantization``: None (float32) or a CTranslate2 type such as ``int8`` stored in the file; any
    type can still be chosen at load time. Raises ValueError for non-Transformer runs."""
    from ..translation.lifecycle import load_run
    from ..translation.subwords import Vocabs as _Vocabs

    run = load_run(run_dir, "cpu", which)
    if run.cfg.model.arch != "transformer":
        raise ValueError(f"{run_dir}: CTranslate2 export needs a Transformer run (model.arch: transformer), "
                         f"got {run.cfg.model.arch!r}")
    spec = transformer_spec(run.model, _pieces(run.vocabs.src), _pieces(run.vocabs.tgt))
    spec.validate()
    if quantization is not None:
        spec.optimize(quantization=quantization)
    run_dir = Path(run_dir)
    with atomic_output_dir(Path(out), overwrite) as tmp:
        spec.save(str(tmp))
        shutil.copyfile(run_dir / "config.yaml", tmp / "config.yaml")
        for path in {*_Vocabs.paths(run_dir, run.cfg.data.joint_vocab)}:
            shutil.copyfile(path, tmp / path.name)
        (tmp / "export.json").write_text(json.dumps(
            {"format": "ctranslate2", "run_dir": str(run_dir.resolve()), "weights": str(run.weights),
             "quantization": quantization or "float32"}, indent=1) + "\n", encoding="utf-8")
    return Path(out)


@dataclass
class CT2Run:
    """An exported directory loaded into a ``ctranslate2.Translator``; ``translate`` returns our
    :class:`Hypothesis` objects (token ids, GNMT score, log-probability, alignment-layer attention)."""

    cfg: TranslationConfig
    vocabs: Vocabs
    translator: object
    device: torch.device = torch.device("cpu")

    def translate(self, sources: Sequence[str], beam_size: int | None = None, n_best: int = 1,
                  prefixes: Sequence[str] | None = None) -> list:
        """Hypotheses (lists, best first) for each source sentence, in input order; an empty source gives one
        empty hypothesis. ``prefixes``: per sentence the text its translation must start with ("" = free); the
        log-probability then covers the tokens after the prefix only (CTranslate2 does not score the prefix)."""
        dec = self.cfg.decoding
        beam = dec.beam_size if beam_size is None else beam_size
        if not 1 <= n_best <= beam:
            raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam}")
        pieces = self.vocabs.src.encode(list(sources), out_type=str)
        forced = self.vocabs.tgt.encode(list(prefixes), out_type=str) if prefixes is not None else None
        limits = [math.ceil(dec.max_len_a * (len(p) + 1)) + dec.max_len_b for p in pieces]  # ours: + </s>
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        results: list = [None] * len(pieces)
        for start in range(0, len(order), dec.batch_size):
            idx = order[start:start + dec.batch_size]
            # CTranslate2's limit counts </s>; a longer output is cut to the sentence's own limit below.
            outs = self.translator.translate_batch(
                [pieces[i] for i in idx], beam_size=beam, num_hypotheses=beam, length_penalty=0.0,
                return_scores=True, return_attention=True, max_decoding_length=max(limits[i] for i in idx),
                max_batch_size=0, target_prefix=None if forced is None else [forced[i] or None for i in idx])
            for i, out in zip(idx, outs):
                results[i] = self._hypotheses(out, len(pieces[i]), limits[i])[:n_best]
        return results

    def _hypotheses(self, out, src_len: int, limit: int) -> list[Hypothesis]:
        """Our hypotheses from one CTranslate2 result, ranked by the GNMT penalty. CTranslate2's attention has
        no column for the source's </s>: it is what the row leaves of 1. It has no row for the output's </s>."""
        hyps = []
        for tokens, log_prob, attn in zip(out.hypotheses, out.scores, out.attention):
            ids = [self.vocabs.tgt.piece_to_id(p) for p in tokens[:limit]]
            rows = np.asarray(attn, dtype=np.float32).reshape(len(attn), src_len)[:limit]  # (T, S)
            rows = np.concatenate([rows, np.clip(1.0 - rows.sum(1, keepdims=True), 0.0, 1.0)], 1)  # (T, S + 1)
            score = log_prob / float(length_penalty(len(ids) + 1, self.cfg.decoding.alpha))
            hyps.append(Hypothesis(ids, score, log_prob, torch.from_numpy(rows), len(tokens) < limit))
        return sorted(hyps, key=lambda h: h.score, reverse=True) or [Hypothesis([], 0.0, 0.0, torch.zeros(0, 1))]

    def detok(self, ids: Sequence[int]) -> str:
        return self.vocabs.decode_tgt(ids)


def load_ct2(path: str | Path, compute_type: str = "default", alpha: float | None = None,
             threads: int | None = None) -> CT2Run:
    """Load a directory written by :func:`export_ctranslate2` on the CPU. ``compute_type``: CTranslate2's
    (``default``, ``float32``, ``int8``, ...); ``threads``: intra-op threads (default: the run's
    ``training.cpu_threads``, else torch's thread count)."""
    # CTranslate2's OpenMP threads busy-wait between parallel regions by default; on a CPU shared with other
    # processes (or with the server's event loop and clients) the spinning threads slow everything down.
    # Read when the runtime loads; set OMP_WAIT_POLICY=ACTIVE yourself on a dedicated machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ctranslate2

    path = Path(path)
    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{path}: no CTranslate2 model ({MODEL_FILE}); write one with "
                                f"`seq2seq-attn export RUN_DIR --format ctranslate2 {path}`")
    cfg = load_task_config(TranslationConfig, path / "config.yaml")
    if alpha is not None:
        cfg.decoding = replace(cfg.decoding, alpha=alpha)
    plain = SearchOptions(alpha=cfg.decoding.alpha)
    changed = [f.name for f in fields(SearchOptions) if getattr(cfg.decoding, f.name) != getattr(plain, f.name)]
    if changed or cfg.decoding.ensemble:
        raise ValueError(f"{path / 'config.yaml'}: decoding.{(changed or ['ensemble'])[0]} is not supported by the "
                         "CTranslate2 engine (only beam search with the GNMT length penalty)")
    vocabs = Vocabs.load(path, cfg.data.joint_vocab)
    translator = ctranslate2.Translator(str(path), device="cpu", compute_type=compute_type, inter_threads=1,
                                        intra_threads=threads or torch.get_num_threads())
    return CT2Run(cfg, vocabs, translator)
