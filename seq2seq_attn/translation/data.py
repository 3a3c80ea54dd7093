"""Encoded parallel data: filters with counts, padding (batches: :func:`seq2seq_attn.layers.length_batches`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..layers import index_dtype
from .subwords import BOS, EOS, PAD


@dataclass
class FilterReport:
    total: int
    empty: int = 0
    too_long: int = 0
    bad_ratio: int = 0

    @property
    def kept(self) -> int:
        return self.total - self.empty - self.too_long - self.bad_ratio

    def describe(self, name: str, max_len: int, max_ratio: float) -> str:
        return (f"{name}: {self.total} pairs, dropped {self.empty} empty, {self.too_long} longer than {max_len} "
                f"tokens, {self.bad_ratio} with length ratio > {max_ratio:g}; kept {self.kept}")


def filter_pairs(src_text: Sequence[str], tgt_text: Sequence[str], src_ids: Sequence[list[int]],
                 tgt_ids: Sequence[list[int]], max_len: int | None, max_ratio: float | None
                 ) -> tuple[list[int], FilterReport]:
    """Indices of the pairs that pass the filters (checked in this order: empty, length, ratio)."""
    report = FilterReport(total=len(src_text))
    keep = []
    for i, (s, t) in enumerate(zip(src_text, tgt_text)):
        if not s or not t:
            report.empty += 1
            continue
        ls, lt = len(src_ids[i]), len(tgt_ids[i]) + 1  # target + EOS
        if max_len is not None and max(ls, lt) > max_len:
            report.too_long += 1
            continue
        if max_ratio is not None and max(ls, lt) / max(1, min(ls, lt)) > max_ratio:
            report.bad_ratio += 1
            continue
        keep.append(i)
    return keep, report


#: filter_encoded works through this many pairs at a time, so its temporaries do not grow with the corpus.
FILTER_CHUNK = 1 << 20


def filter_encoded(src_lengths: np.ndarray, tgt_lengths: np.ndarray, empty: np.ndarray, max_len: int | None,
                   max_ratio: float | None) -> tuple[np.ndarray, FilterReport]:
    """:func:`filter_pairs` on arrays: ``src_lengths``/``tgt_lengths`` (N,) ids per side without EOS,
    ``empty`` (N,) bool (either text empty); any integer dtypes (the compact stored ones). Returns the kept
    indices ((K,) ascending, :func:`~seq2seq_attn.layers.index_dtype`: int32 below 2**31 pairs) and the same
    counts as :func:`filter_pairs`. Works in chunks of :data:`FILTER_CHUNK` pairs (flat memory for millions)."""
    total = len(empty)
    kept = np.empty(total, dtype=index_dtype(total))
    n_kept = n_empty = n_long = n_ratio = 0
    for start in range(0, total, FILTER_CHUNK):
        part = slice(start, start + FILTER_CHUNK)
        ls = np.asarray(src_lengths[part], dtype=np.int64) + 1  # source + EOS
        lt = np.asarray(tgt_lengths[part], dtype=np.int64) + 1  # target + EOS
        gone = np.asarray(empty[part], dtype=bool)
        n_empty += int(gone.sum())
        longer = np.maximum(ls, lt)
        if max_len is not None:
            too_long = ~gone & (longer > max_len)
            n_long += int(too_long.sum())
            gone = gone | too_long
        if max_ratio is not None:
            bad_ratio = ~gone & (longer / np.maximum(1, np.minimum(ls, lt)) > max_ratio)
            n_ratio += int(bad_ratio.sum())
            gone = gone | bad_ratio
        here = np.flatnonzero(~gone) + start
        kept[n_kept:n_kept + len(here)] = here
        n_kept += len(here)
    return kept[:n_kept], FilterReport(total, n_empty, n_long, n_ratio)  # pages past n_kept are never touched


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) long, source + EOS, padded
    src_pad_mask: torch.Tensor  # (B, S) bool, True = pad
    tgt_in: torch.Tensor  # (B, T) BOS + target
    tgt_out: torch.Tensor  # (B, T) target + EOS, PAD where padded
    indices: list[int]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.src.to(device), self.src_pad_mask.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device), self.indices)

    @property
    def num_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum())


def pad(seqs: Sequence[Sequence[int]], value: int = PAD) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate_pairs(src: Sequence[list[int]], tgt: Sequence[list[int]] | None, indices: list[int]) -> Batch:
    """Pad one batch. Without targets (translation), ``tgt_in``/``tgt_out`` are empty (B, 0) tensors."""
    src_t = pad(src)
    if tgt is None:
        empty = torch.zeros((len(src), 0), dtype=torch.long)
        return Batch(src_t, src_t == PAD, empty, empty, indices)
    return Batch(src_t, src_t == PAD, pad([[BOS, *t] for t in tgt]), pad([[*t, EOS] for t in tgt]), indices)
