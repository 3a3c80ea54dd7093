"""Text to token ids: cleaning, sentence splitting (for HAN), a word-level or sentencepiece vocabulary built
from the training split, and saving / loading it with the run."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..training.checkpoint import atomic_write_files
from .config import DataConfig

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
PAD_ID, UNK_ID, CLS_ID = 0, 1, 2

_TAG = re.compile(r"<[^>]*>")
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# Penn Treebank tokenization (SST, TREC): split clitics and bracket tokens, undone before our own tokenizer
_PTB_CLITIC = re.compile(r"(\w) (n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE)
_PTB_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}", "``": '"',
                 "''": '"'}
_PTB_BRACKET = re.compile("|".join(re.escape(k) for k in _PTB_BRACKETS), re.IGNORECASE)


def undo_ptb(text: str) -> str:
    """``does n't`` -> ``doesn't``, ``it 's`` -> ``it's``, ``-lrb-`` -> ``(``: words as raw text writes them,
    so a vocabulary from raw text (e.g. an ``init_from`` run on IMDB) covers them."""
    text = _PTB_BRACKET.sub(lambda m: _PTB_BRACKETS[m.group(0).lower()], text)
    return _PTB_CLITIC.sub(r"\1\2", text)


def clean(text: str, cfg: DataConfig) -> str:
    if cfg.undo_ptb:
        text = undo_ptb(text)
    if cfg.strip_html:
        text = _BREAK_TAG.sub("\n", text)  # IMDB's <br /> separate paragraphs: keep them as sentence breaks
        text = _TAG.sub(" ", text)
    return text.lower() if cfg.lowercase else text


def split_sentences(text: str) -> list[str]:
    """Split after ., ! or ? followed by whitespace, and at line breaks; empty pieces are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class WordVocab:
    """Regex word tokenizer and a frequency-cut vocabulary (``<pad>``=0, ``<unk>``=1, ``<cls>``=2)."""

    kind = "word"

    def __init__(self, itos: list[str]) -> None:
        self.itos = itos
        self.stoi = {s: i for i, s in enumerate(itos)}

    @classmethod
    def build(cls, texts: Iterable[str], size: int, min_freq: int) -> WordVocab:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text))
        # Ties broken alphabetically so that the vocabulary does not depend on the file order.
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, CLS] + words[: size - 3])

    def tokenize(self, sentence: str) -> list[str]:
        return _WORD.findall(sentence)

    def to_ids(self, tokens: list[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def display(self, token: str) -> str:
        return token

    def __len__(self) -> int:
        return len(self.itos)

    def save(self, run_dir: Path) -> None:
        atomic_write_files({run_dir / "vocab.json": json.dumps({"kind": "word", "itos": self.itos}).encode()})


class SentencePieceVocab:
    """A sentencepiece unigram model trained on the training split (pad=0, unk=1, bos=2 used as CLS)."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def build(cls, texts: Iterable[str], size: int) -> SentencePieceVocab:
        import sentencepiece as spm

        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)), model_writer=model, vocab_size=size, model_type="unigram",
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=CLS_ID, eos_id=-1, input_sentence_size=200000,
            shuffle_input_sentence=True, hard_vocab_limit=False, minloglevel=2, num_threads=2,
        )
        return cls(model.getvalue())

    @property
    def itos(self) -> list[str]:
        """Every piece by id (as ``WordVocab.itos``)."""
        return [self.sp.id_to_piece(i) for i in range(len(self))]

    def tokenize(self, sentence: str) -> list[str]:
        return self.sp.encode(sentence, out_type=str)

    def to_ids(self, tokens: list[str]) -> list[int]:
        return [self.sp.piece_to_id(t) for t in tokens]

    def display(self, token: str) -> str:
        return token.replace("\u2581", " ").strip() or token

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def save(self, run_dir: Path) -> None:
        meta = json.dumps({"kind": "sentencepiece", "model": "spm.model"}).encode()
        atomic_write_files({run_dir / "spm.model": self.proto, run_dir / "vocab.json": meta})


Vocab = WordVocab | SentencePieceVocab


def build_vocab(texts: list[str], cfg: DataConfig) -> Vocab:
    """Build the vocabulary from cleaned training texts."""
    if cfg.tokenizer == "sentencepiece":
        return SentencePieceVocab.build(texts, cfg.vocab_size)
    return WordVocab.build(texts, cfg.vocab_size, cfg.min_freq)


def load_vocab(run_dir: Path) -> Vocab:
    path = Path(run_dir) / "vocab.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no vocabulary in the run directory")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("kind") == "sentencepiece":
        return SentencePieceVocab((Path(run_dir) / meta["model"]).read_bytes())
    return WordVocab(meta["itos"])


@dataclass
class EncodedDoc:
    """A tokenized document: flat ids, the length of each sentence (sums to ``len(ids)``) and the tokens."""

    ids: np.ndarray  # (num_tokens,) int32
    sentence_lengths: np.ndarray  # (num_sentences,) int32
    tokens: list[str]


def encode(text: str, vocab: Vocab, cfg: DataConfig, hierarchical: bool) -> EncodedDoc:
    """Clean, split and tokenize one document, truncating to the configured limits.

    Flat models see at most ``max_tokens`` tokens; HAN also keeps at most ``max_sentences`` sentences of at
    most ``max_sentence_tokens`` tokens each. Sentences are found for both, so an explanation can show them.
    """
    budget = cfg.max_tokens if cfg.max_tokens is not None else float("inf")
    tokens: list[str] = []
    lengths: list[int] = []
    for sentence in split_sentences(clean(text, cfg)):
        if budget <= 0 or (hierarchical and cfg.max_sentences is not None and len(lengths) >= cfg.max_sentences):
            break
        toks = vocab.tokenize(sentence)
        if hierarchical and cfg.max_sentence_tokens is not None:
            toks = toks[: cfg.max_sentence_tokens]
        toks = toks[: int(min(budget, len(toks)))]
        if not toks:
            continue
        tokens.extend(toks)
        lengths.append(len(toks))
        budget -= len(toks)
    ids = np.asarray(vocab.to_ids(tokens), dtype=np.int32)
    return EncodedDoc(ids, np.asarray(lengths, dtype=np.int32), tokens)
