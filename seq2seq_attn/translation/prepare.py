"""Encode once: the training corpus as flat arrays on disk (:mod:`seq2seq_attn.layers.ragged`), cached and
shared by runs (``seq2seq-attn prepare CONFIG``; ``train``, resumes and later runs on the same corpus reuse it).

The cache (``data.cache_dir``, else ``$SEQ2SEQ_ATTN_CACHE``, else ``~/.cache/seq2seq_attn``) holds under
``translation/``:

* ``spm-<key>/``: the subword model(s), keyed by the training files' content digest and the subword settings
  (type, size, joint, coverage, sample size). Trained on an even seeded sample of pairs
  (:func:`~.subwords.sample_pairs`), collected in one streamed pass over the corpus.
* ``enc-<key>/``: the encoded training split, keyed by the content digest and the subword model bytes:
  ``src`` (source ids, no EOS) and ``tgt`` (target ids, no BOS/EOS) ragged arrays
  (:mod:`seq2seq_attn.layers.ragged`) and ``empty.npy`` ((N,) bool, either side's text empty).

The filters (empty, length, ratio) are not part of the key: they are computed on the arrays at every start
(:func:`~.data.filter_encoded`, a few vectorized passes), so changing ``max_len`` reuses the encoding.
Encoding streams the files in chunks of :data:`CHUNK` pairs and runs sentencepiece on every core.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..layers import RaggedArray, RaggedWriter, build_folder, ids_dtype
from .config import DataConfig, TranslationConfig
from .corpus import corpus_digest, describe_split, iter_corpus
from .subwords import Vocabs, sample_pairs, sample_sizes

#: Pairs encoded per sentencepiece call (the most text held at once while encoding).
CHUNK = 20_000
#: Version of the on-disk layout; part of every key.
FORMAT = 2
CACHE_ENV = "SEQ2SEQ_ATTN_CACHE"


def cache_root(data: object) -> Path:
    """Where encoded corpora and subword models are cached: ``data.cache_dir`` when the data config has one
    and sets it, else ``$SEQ2SEQ_ATTN_CACHE``, else ``~/.cache/seq2seq_attn``."""
    if getattr(data, "cache_dir", None):
        return Path(data.cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "seq2seq_attn"


def _key(*parts: object) -> str:
    return hashlib.sha256(repr((FORMAT, *parts)).encode()).hexdigest()[:24]


@dataclass
class EncodedPairs:
    """An encoded training split on disk: ``src``/``tgt`` ragged arrays, ``where`` (the files, for messages),
    ``folder`` (the cache folder); ``empty`` (N,) bool, read from ``empty.npy`` at each access (nothing of it
    stays mapped once the filters have run)."""

    folder: Path
    src: RaggedArray
    tgt: RaggedArray
    where: str

    def __len__(self) -> int:
        return len(self.src)

    @property
    def empty(self) -> np.ndarray:
        return np.load(self.folder / "empty.npy", mmap_mode="r")

    @classmethod
    def open(cls, folder: Path) -> EncodedPairs:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        pairs = cls(folder, RaggedArray(folder, "src"), RaggedArray(folder, "tgt"), meta["where"])
        if not len(pairs.src) == len(pairs.tgt) == len(pairs.empty) == meta["pairs"]:
            raise ValueError(f"{folder}: encoded corpus is inconsistent; delete the folder to rebuild it")
        return pairs


def _train_subwords(data: DataConfig, out: Path, log: Callable[[str], None]) -> None:
    """Train the subword model(s) into ``out`` on an even sample of the training pairs, streamed: one pass
    counts the pairs, one keeps the sampled ones."""
    start = time.perf_counter()
    num_pairs = sum(1 for _ in iter_corpus(data.train, data))
    picked = sample_pairs(num_pairs, sample_sizes(data.joint_vocab, data.spm_max_sentences))
    wanted = np.zeros(num_pairs, dtype=bool)
    wanted[picked] = True
    src, tgt = [], []
    for i, (s, t) in enumerate(iter_corpus(data.train, data)):
        if wanted[i]:
            src.append(s)
            tgt.append(t)
    Vocabs.train(data.joint_vocab, src, tgt, data.vocab_size, data.spm_type, data.character_coverage,
                 data.spm_max_sentences).save(out)
    log(f"subwords: trained on {len(src)} of {num_pairs} pairs in {time.perf_counter() - start:.2f} s")


def subword_models(data: DataConfig, digest: str, run_dir: Path | None, log: Callable[[str], None],
                   resume: bool = False) -> Vocabs:
    """``resume``: the run dir's models when it has them (required when it holds a checkpoint); else the
    cached ones for this corpus and these settings (trained into the cache first when missing). Nothing is
    written into ``run_dir``: the Trainer saves the models there once its checks have passed
    (``TranslationTask.write_run_files``), so a run that fails or is refused leaves none behind."""
    from ..training.checkpoint import read_latest

    joint = data.joint_vocab
    if resume and run_dir is not None:
        if all(p.is_file() for p in Vocabs.paths(run_dir, joint)):
            return Vocabs.load(run_dir, joint)
        if read_latest(run_dir) is not None:
            missing = [str(p) for p in Vocabs.paths(run_dir, joint) if not p.is_file()]
            raise FileNotFoundError(f"{missing[0]}: missing; the checkpoint's weights need the subword model "
                                    "they were trained with")
    settings = (data.spm_type, data.vocab_size, joint, data.character_coverage, data.spm_max_sentences)
    folder = cache_root(data) / "translation" / f"spm-{_key(digest, settings)}"
    build_folder(folder, lambda tmp: _train_subwords(data, tmp, log))
    return Vocabs.load(folder, joint)  # the Trainer's rank 0 saves it into the run dir (atomically)


def _encode(data: DataConfig, vocabs: Vocabs, out: Path, log: Callable[[str], None]) -> None:
    """Stream the training split through sentencepiece into ragged arrays in ``out``."""
    start = time.perf_counter()
    threads = os.cpu_count() or 1
    src_w = RaggedWriter(out, "src", ids_dtype(vocabs.src.get_piece_size()))
    tgt_w = RaggedWriter(out, "tgt", ids_dtype(vocabs.tgt.get_piece_size()))
    empty: list[np.ndarray] = []

    def flush(src: list[str], tgt: list[str]) -> None:
        src_w.extend(vocabs.src.encode(src, num_threads=threads))
        tgt_w.extend(vocabs.tgt.encode(tgt, num_threads=threads))
        empty.append(np.fromiter((not s or not t for s, t in zip(src, tgt)), dtype=bool, count=len(src)))

    src: list[str] = []
    tgt: list[str] = []
    for s, t in iter_corpus(data.train, data):
        src.append(s)
        tgt.append(t)
        if len(src) == CHUNK:
            flush(src, tgt)
            src, tgt = [], []
    if src:
        flush(src, tgt)
    pairs = src_w.close()
    tgt_w.close()
    np.save(out / "empty.npy", np.concatenate(empty) if empty else np.zeros(0, dtype=bool))
    where = describe_split(data.train, data)
    (out / "meta.json").write_text(json.dumps({"pairs": pairs, "where": where}), encoding="utf-8")
    seconds = time.perf_counter() - start
    log(f"encoded {pairs} pairs in {seconds:.2f} s ({pairs / max(seconds, 1e-9):.0f} pairs/s, {threads} threads)")


def prepare(cfg: TranslationConfig, run_dir: Path | None = None, log: Callable[[str], None] = print,
            resume: bool = False) -> tuple[Vocabs, EncodedPairs]:
    """The subword models and the encoded training split, from the cache when present (see the module
    docstring). ``resume``: use the subword models of the run's folder ``run_dir`` (see
    :func:`subword_models`); nothing is written there."""
    data = cfg.data
    digest = corpus_digest(data.train, data)
    vocabs = subword_models(data, digest, run_dir, log, resume)
    model_bytes = vocabs.src.serialized_model_proto() + vocabs.tgt.serialized_model_proto()
    key = _key(digest, hashlib.sha256(model_bytes).hexdigest())
    folder = cache_root(data) / "translation" / f"enc-{key}"
    if folder.is_dir():
        log(f"train: corpus token ids from the cache {folder}")
    build_folder(folder, lambda tmp: _encode(data, vocabs, tmp, log))
    return vocabs, EncodedPairs.open(folder)
