"""Word alignments from attention, in Pharaoh format (``i-j``: source word i, 0-based, is aligned to output
word j), as attention-based aligners do it (Garg et al., 2019, "Jointly Learning to Align and Translate with
Transformer Models"): every output subword is aligned to the source subword it attends to most (the source
EOS excluded), and two words are aligned when any of their subwords are.

Words are the whitespace-separated words of the sentencepiece segmentation: a piece starting with ``▁``
opens a word (a bare ``▁`` piece opens the word the next piece fills).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

SPACE = "\u2581"  # sentencepiece's word-boundary mark


def word_index(pieces: Sequence[str]) -> list[int]:
    """The word number (0-based) of each piece: ``["▁Ein", "▁Ha", "us"]`` -> ``[0, 1, 1]``."""
    out, word, after_bare = [], -1, False
    for piece in pieces:
        if (piece.startswith(SPACE) or word < 0) and not after_bare:
            word += 1
        out.append(word)
        after_bare = piece == SPACE
    return out


def word_alignment(attention: torch.Tensor, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
                   ) -> list[tuple[int, int]]:
    """Sorted (source word, output word) pairs from ``attention`` (T', S'): one row per output piece, one
    column per source piece; extra rows/columns (the EOS of either side) are ignored. Raises ``ValueError``
    when the matrix is smaller than the pieces."""
    t, s = len(tgt_pieces), len(src_pieces)
    if t == 0 or s == 0:
        return []
    if attention.size(0) < t or attention.size(1) < s:
        raise ValueError(f"attention {tuple(attention.shape)} is smaller than {t} output x {s} source pieces")
    best = attention[:t, :s].float().argmax(-1).tolist()  # (T,): the most attended source piece
    src_words, tgt_words = word_index(src_pieces), word_index(tgt_pieces)
    return sorted({(src_words[best[j]], tgt_words[j]) for j in range(t)})


def pharaoh(pairs: Sequence[tuple[int, int]]) -> str:
    """``[(0, 0), (1, 2)]`` -> ``"0-0 1-2"``."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


def select_attention(maps: dict, layer: int | None, head: int | None) -> torch.Tensor:
    """The cross-attention (T, S) of decoder ``layer`` (default: the last) from ``attention_maps`` output
    (``{module: (H, T, S)}``): head ``head``, or the mean of the heads when ``head`` is None. Raises
    ``ValueError`` naming the valid range when the model has no such layer or head."""
    from .attention_export import cross_attention_names

    names = cross_attention_names(maps)
    if not names:
        raise ValueError("--align-layer/--align-head need a model with multi-head cross-attention (Transformer)")
    layer = -1 if layer is None else layer
    if not -len(names) <= layer < len(names):
        raise ValueError(f"--align-layer {layer} is out of range: the model has {len(names)} decoder layers")
    weights = torch.from_numpy(maps[names[layer]])  # (H, T, S)
    if head is None:
        return weights.mean(0)
    if not 0 <= head < weights.size(0):
        raise ValueError(f"--align-head {head} is out of range: the model has {weights.size(0)} heads")
    return weights[head]


@dataclass(frozen=True)
class AlignmentSource:
    """Which attention gives the alignments: ``layer`` and ``head`` None = the search's own attention (RNN:
    the attention; Transformer: the mean of the heads of ``model.transformer.alignment_layer``; ensembles: the
    mean over the models); otherwise decoder ``layer`` (default -1, the last) and ``head`` (default: the mean
    of the heads), read from one more teacher-forced run of the hypothesis (ensembles: the first model)."""

    layer: int | None = None
    head: int | None = None


def hypothesis_alignment(run, source: str, hyp, where: AlignmentSource = AlignmentSource()) -> str:
    """Pharaoh alignment of one hypothesis of a loaded run (``run.translate``); "" for an empty source."""
    from .attention_export import attention_maps
    from .search import EnsembleModel

    if not source:
        return ""
    src_pieces = run.vocabs.src.encode(source, out_type=str)
    tgt_pieces = [run.vocabs.tgt.id_to_piece(t) for t in hyp.tokens]
    attention = hyp.attention
    if where.layer is not None or where.head is not None:
        model = run.model.models[0] if isinstance(run.model, EnsembleModel) else run.model
        maps = attention_maps(model, run.vocabs.encode_src([source])[0], hyp.tokens, run.device)
        attention = select_attention(maps, where.layer, where.head)
    return pharaoh(word_alignment(attention, src_pieces, tgt_pieces))


def alignments(run, sources: Sequence[str], hyps: Sequence[list], where: AlignmentSource = AlignmentSource()
               ) -> list[str]:
    """The alignment of each sentence's best hypothesis (see :func:`hypothesis_alignment`)."""
    return [hypothesis_alignment(run, s, h[0], where) if h else "" for s, h in zip(sources, hyps)]
