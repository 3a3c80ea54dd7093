"""Classification corpora at scale: the training file's documents as flat arrays on disk (token ids,
sentence lengths; :mod:`seq2seq_attn.layers.ragged`) and labels, read in streamed passes and cached, so a
classifier trains on millions of documents in flat memory and a resume or later run starts from the cache.

The cache (``$SEQ2SEQ_ATTN_CACHE``, else ``~/.cache/seq2seq_attn``) holds under ``classification/``:

* ``rows-<key>/``: each usable row's label (``labels.npy``, codes into ``meta.json``'s ``names``) and the
  number of bad rows skipped, keyed by the file's content digest and the reading settings;
* ``enc-<key>/``: every usable row encoded (``ids``, and ``sents`` = sentence lengths, for HAN), keyed by the
  rows key, the vocabulary and the text settings; encoded in chunks of :data:`CHUNK` documents by one forked
  worker process per core.

Documents keep the order of the file; a split is a set of row indices into it (:class:`MappedDocs`), so the
seeded shuffle, ``max_train_docs`` and the held-out part select exactly the documents they always did.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..layers import RaggedArray, RaggedWriter, build_folder, ids_dtype
from ..paths import resolve_path
from ..translation.prepare import FORMAT, cache_root
from .config import DataConfig
from .data import HF_FILE_BUILDERS, RawExample, iter_split
from .text import EncodedDoc, SentencePieceVocab, Vocab, clean, encode

#: Documents encoded between two writes (the most text held at once while encoding).
CHUNK = 5_000
_READING = ("format", "text_column", "label_column", "encoding", "trec_fine", "hf_name", "hf_config",
            "label_names", "skip_bad_rows")
_TEXT = ("lowercase", "strip_html", "undo_ptb", "max_tokens", "max_sentences", "max_sentence_tokens")


def _digest(spec: str, data: DataConfig) -> str:
    """SHA-256 of a split's file content (or its dataset name and split) and the reading settings."""
    h = hashlib.sha256(repr([getattr(data, k) for k in _READING]).encode())
    if data.format != "hf" or data.hf_name in HF_FILE_BUILDERS:
        with open(resolve_path(spec), "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    else:
        h.update(spec.encode())
    return h.hexdigest()[:24]


@dataclass
class RowIndex:
    """The usable rows of a training file: ``codes`` (N,) int32 into ``names`` (label names), ``num_bad``."""

    spec: str
    key: str
    codes: np.ndarray
    names: list[str]
    num_bad: int

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def build(cls, spec: str, data: DataConfig) -> RowIndex:
        """From the cache, or one streamed pass over the file (bad rows raise unless skipped)."""
        key = _digest(spec, data)

        def fill(tmp: Path) -> None:
            bad = [0]
            names: dict[str, int] = {}
            codes = [names.setdefault(ex.label, len(names)) for ex in iter_split(spec, data, bad)]
            np.save(tmp / "labels.npy", np.asarray(codes, dtype=np.int32))
            meta = {"names": list(names), "num_bad": bad[0]}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

        folder = build_folder(cache_root(data) / "classification" / f"rows-{key}", fill)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return cls(spec, key, np.load(folder / "labels.npy"), meta["names"], meta["num_bad"])

    def label_names(self, rows: np.ndarray) -> list[str]:
        """The label names of ``rows`` (distinct, in order of first appearance)."""
        return [self.names[c] for c in np.unique(self.codes[rows])]

    def label_index(self, labels: list[str]) -> np.ndarray:
        """(N,) each row's index in ``labels`` (-1: not in it)."""
        index = {name: i for i, name in enumerate(labels)}
        table = np.asarray([index.get(name, -1) for name in self.names] or [-1], dtype=np.int64)
        return table[self.codes]

    def rows(self, data: DataConfig) -> Iterator[tuple[int, RawExample]]:
        """(row index, example) of every usable row, streamed again."""
        return enumerate(iter_split(self.spec, data))


def training_texts(index: RowIndex, rows: np.ndarray, data: DataConfig, ordered: bool) -> Iterator[str] | list[str]:
    """The cleaned texts of ``rows``: streamed in file order, or (``ordered``) a list in the order of ``rows``
    (the sentencepiece trainer samples by position)."""
    if not ordered:
        wanted = np.zeros(len(index), dtype=bool)
        wanted[rows] = True
        return (clean(ex.text, data) for i, ex in index.rows(data) if wanted[i])
    position = np.full(len(index), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    texts: list[str] = [""] * len(rows)
    for i, ex in index.rows(data):
        if position[i] >= 0:
            texts[position[i]] = clean(ex.text, data)
    return texts


def vocab_digest(vocab: Vocab) -> str:
    body = vocab.proto if isinstance(vocab, SentencePieceVocab) else json.dumps(vocab.itos).encode()
    return hashlib.sha256(body).hexdigest()


@dataclass
class EncodedRows:
    """Every usable row of the training file encoded: ``ids`` and ``sents`` ragged arrays (on disk)."""

    folder: Path
    ids: RaggedArray
    sents: RaggedArray

    @classmethod
    def build(cls, index: RowIndex, vocab: Vocab, data: DataConfig, hierarchical: bool) -> EncodedRows:
        settings = [getattr(data, k) for k in _TEXT]
        key = repr((FORMAT, index.key, vocab_digest(vocab), settings, hierarchical))
        key = hashlib.sha256(key.encode()).hexdigest()

        def fill(tmp: Path) -> None:
            ids = RaggedWriter(tmp, "ids", ids_dtype(len(vocab)))
            sents = RaggedWriter(tmp, "sents", np.int32)
            for chunk_ids, chunk_sents in _encode_chunks(index, vocab, data, hierarchical):
                ids.extend(chunk_ids)
                sents.extend(chunk_sents)
            ids.close()
            sents.close()

        folder = build_folder(cache_root(data) / "classification" / f"enc-{key[:24]}", fill)
        return cls(folder, RaggedArray(folder, "ids"), RaggedArray(folder, "sents"))


_WORKER: tuple | None = None  # (vocab, data config, hierarchical) of an encoding worker process


def _start_worker(vocab: Vocab, data: DataConfig, hierarchical: bool) -> None:
    global _WORKER
    _WORKER = (vocab, data, hierarchical)


def _encode_texts(texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """One chunk in a worker: (token ids, sentence lengths) of each text."""
    vocab, data, hierarchical = _WORKER
    docs = [encode(text, vocab, data, hierarchical) for text in texts]
    return [d.ids.tolist() for d in docs], [d.sentence_lengths.tolist() for d in docs]


def _text_chunks(index: RowIndex, data: DataConfig) -> Iterator[list[str]]:
    chunk: list[str] = []
    for _, ex in index.rows(data):
        chunk.append(ex.text)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encode_chunks(index: RowIndex, vocab: Vocab, data: DataConfig, hierarchical: bool
                   ) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
    """Every usable row encoded, chunk by chunk in file order: in this process for a single chunk or a single
    core, else in forked worker processes (one per core, at most ``2 * workers`` chunks of text in flight)."""
    workers = min(os.cpu_count() or 1, 8)
    if workers == 1 or len(index) <= CHUNK or "fork" not in mp.get_all_start_methods():
        _start_worker(vocab, data, hierarchical)
        yield from map(_encode_texts, _text_chunks(index, data))
        return
    context = mp.get_context("fork")  # the workers inherit the vocabulary instead of unpickling it
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(vocab, data, hierarchical)) as pool:
        pending: deque = deque()
        for chunk in _text_chunks(index, data):
            pending.append(pool.submit(_encode_texts, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class MappedDocs(Sequence):
    """Documents ``rows`` of an :class:`EncodedRows` as :class:`EncodedDoc` (ids and sentence lengths read
    from the files; no token strings). ``lengths``: (K,) token counts (the compact stored dtype), from the
    lengths file alone."""

    def __init__(self, encoded: EncodedRows, rows: np.ndarray) -> None:
        self.encoded, self.rows = encoded, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> EncodedDoc:
        r = int(self.rows[i])
        return EncodedDoc(self.encoded.ids[r], self.encoded.sents[r], [])

    @property
    def lengths(self) -> np.ndarray:
        return self.encoded.ids.lengths[self.rows]
