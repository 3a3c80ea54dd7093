"""sentencepiece subword vocabularies (Kudo and Richardson, 2018), trained on the training split and stored
in the run directory so that ``test`` and ``translate`` need nothing else.

Ids are fixed for every model: pad 0, unk 1, bos 2, eos 3. A joint vocabulary is one model for both
languages (``spm.model``); separate vocabularies are ``spm.src.model`` and ``spm.tgt.model``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

PAD, UNK, BOS, EOS = 0, 1, 2, 3

#: The seed of the subword-training sample: fixed, so that the same corpus and settings give the same model
#: whatever the run's ``training.seed`` (and a cached model can be shared by runs).
SAMPLE_SEED = 20_181_026


def sample_pairs(num_pairs: int, max_pairs: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Sorted indices of the pairs a subword model is trained on: all of them when ``num_pairs <= max_pairs``,
    else a seeded uniform sample of ``max_pairs`` without replacement (every part of the corpus alike, not
    its first lines). (k,) int64."""
    if num_pairs <= max_pairs:
        return np.arange(num_pairs, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(num_pairs, size=max_pairs, replace=False))


def sample_sizes(joint: bool, max_sentences: int) -> int:
    """How many pairs the subword training samples: a joint model sees both sides of each sampled pair, so
    ``max_sentences // 2`` pairs; separate models see one side each, so ``max_sentences`` pairs."""
    return max(1, max_sentences // 2) if joint else max_sentences


def train_spm(sentences: Sequence[str], vocab_size: int, model_type: str, character_coverage: float = 1.0,
              max_sentences: int = 1_000_000) -> spm.SentencePieceProcessor:
    """Train a sentencepiece model on ``sentences``, in memory (:meth:`Vocabs.save` writes it)."""
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ValueError("cannot train a subword vocabulary on an empty corpus")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size, model_type=model_type,
        character_coverage=character_coverage, input_sentence_size=max_sentences, shuffle_input_sentence=False,
        hard_vocab_limit=False, pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, num_threads=1,
        minloglevel=2, max_sentence_length=16384,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def load_spm(path: Path) -> spm.SentencePieceProcessor:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sentencepiece model not found (is this a translation run dir?)")
    return spm.SentencePieceProcessor(model_file=str(path))


class Vocabs:
    """Source and target sentencepiece models (the same object when joint)."""

    def __init__(self, src: spm.SentencePieceProcessor, tgt: spm.SentencePieceProcessor) -> None:
        self.src, self.tgt = src, tgt

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @staticmethod
    def paths(run_dir: Path, joint: bool) -> tuple[Path, Path]:
        if joint:
            return run_dir / "spm.model", run_dir / "spm.model"
        return run_dir / "spm.src.model", run_dir / "spm.tgt.model"

    @classmethod
    def train(cls, joint: bool, src_text: Sequence[str], tgt_text: Sequence[str], vocab_size: int,
              model_type: str, character_coverage: float, max_sentences: int) -> Vocabs:
        """Train the models on the training split, in memory (nothing is written until :meth:`save`). The
        training sample is the same pairs on both sides (:func:`sample_pairs`, at most ``max_sentences``
        sentences per model): a joint model sees the sampled sources, then their targets (on a small corpus:
        every source, then every target), so a large corpus is not cut to its first sources only."""
        if len(src_text) != len(tgt_text):
            raise ValueError(f"subword training: {len(src_text)} source and {len(tgt_text)} target sentences")
        keep = sample_pairs(len(src_text), sample_sizes(joint, max_sentences)).tolist()
        src_text, tgt_text = [src_text[i] for i in keep], [tgt_text[i] for i in keep]
        if joint:
            sp = train_spm([*src_text, *tgt_text], vocab_size, model_type, character_coverage, max_sentences)
            return cls(sp, sp)
        return cls(train_spm(src_text, vocab_size, model_type, character_coverage, max_sentences),
                   train_spm(tgt_text, vocab_size, model_type, character_coverage, max_sentences))

    def save(self, run_dir: Path) -> None:
        """Write the model(s) into ``run_dir`` (atomically), removing those of the other kind (joint or
        separate) that an earlier run may have left there."""
        from ..training.checkpoint import atomic_write_bytes

        run_dir.mkdir(parents=True, exist_ok=True)
        src_path, tgt_path = self.paths(run_dir, self.joint)
        for path in set(self.paths(run_dir, not self.joint)) - {src_path, tgt_path}:
            path.unlink(missing_ok=True)
        atomic_write_bytes(src_path, self.src.serialized_model_proto())
        if not self.joint:
            atomic_write_bytes(tgt_path, self.tgt.serialized_model_proto())

    @classmethod
    def load(cls, run_dir: Path, joint: bool) -> Vocabs:
        src_path, tgt_path = cls.paths(run_dir, joint)
        src = load_spm(src_path)
        return cls(src, src if joint else load_spm(tgt_path))

    def encode_src(self, lines: Sequence[str]) -> list[list[int]]:
        """Source ids followed by EOS (the encoder sees where the sentence ends)."""
        return [ids + [EOS] for ids in self.src.encode(list(lines))]

    def encode_tgt(self, lines: Sequence[str]) -> list[list[int]]:
        """Target ids without BOS/EOS (added by the batcher)."""
        return self.tgt.encode(list(lines))

    def sample(self, src_lines: Sequence[str], tgt_lines: Sequence[str], alpha: float, nbest_size: int, seed: int
               ) -> tuple[list[list[int]], list[list[int]]]:
        """Subword regularization: one sampled segmentation of each line, as ``encode_src`` / ``encode_tgt``
        (source + EOS, target without). Unigram models sample among the ``nbest_size`` best segmentations with
        smoothing ``alpha`` (Kudo, 2018); BPE models drop each merge with probability ``alpha`` (BPE-dropout,
        Provilkov et al., 2020). Deterministic for a given ``seed`` (one thread)."""
        spm.set_random_generator_seed(seed)
        options = dict(enable_sampling=True, alpha=alpha, nbest_size=nbest_size, num_threads=1)
        src = [ids + [EOS] for ids in self.src.encode(list(src_lines), **options)]
        return src, self.tgt.encode(list(tgt_lines), **options)

    def decode_tgt(self, ids: Sequence[int]) -> str:
        return self.tgt.decode(list(ids))
