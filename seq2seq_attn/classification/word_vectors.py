"""Word vectors for ``model.pretrained_embeddings``: reading and writing the word2vec/GloVe text format, and
training skip-gram with negative sampling (Mikolov et al., 2013, "Distributed Representations of Words and
Phrases and their Compositionality") with gensim's ``Word2Vec`` on local text when no pretrained vectors can
be downloaded.

The text format is one word per line followed by its numbers, separated by spaces; word2vec's first line
``<count> <dim>`` is optional (GloVe files have none).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..layers import open_text

#: Field separators of the text format: spaces and tabs only; other Unicode spaces (U+00A0 ...) belong to words.
_SEPARATOR = re.compile(r"[ \t]+")


def _vector_line(line: str, dim: int | None, where: str) -> tuple[str, np.ndarray]:
    """One stripped ``word x1 ... xdim`` line: the last ``dim`` fields are the numbers, the rest (which may hold
    spaces, as in GloVe 840B; joined by one space) is the word. Without ``dim`` yet, the line sets it."""
    fields = _SEPARATOR.split(line)
    if dim is None:
        dim = len(fields) - 1
        if dim < 1:
            raise ValueError(f"{where}: expected a word and its numbers, got {line[:40]!r}")
    if len(fields) < dim + 1:
        raise ValueError(f"{where}: {len(fields) - 1} numbers, expected {dim}")
    try:
        numbers = np.asarray(fields[-dim:], dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{where}: not a number ({e})") from None
    return " ".join(fields[:-dim]), numbers


def read_word_vectors(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """The words and a ``(num_words, dim)`` float tensor of a word2vec/GloVe text file (plain or .gz).

    Read as such files come: word2vec's ``<count> <dim>`` first line is optional (GloVe has none), surrounding
    whitespace (a space after the last number, CRLF, a UTF-8 BOM) and blank lines are ignored, and the last
    ``dim`` fields of a line are its vector while the rest is the word, so words may contain spaces.
    ``dim`` is the header's, else the first line's field count minus one.

    Raises FileNotFoundError for a missing file and ValueError naming (file, line) for a line that still
    cannot be read (too few numbers, a field that is not a number), or a header count the file does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: word vectors not found")
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = count = None
    with open_text(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.lstrip("\ufeff") if number == 1 else line
            line = line.strip(" \t\r\n")
            if not line:
                continue
            fields = _SEPARATOR.split(line)
            if number == 1 and len(fields) == 2 and all(p.isdigit() for p in fields):
                count, dim = int(fields[0]), int(fields[1])  # word2vec header
                continue
            word, vector = _vector_line(line, dim, f"{path}: line {number}")
            dim = len(vector)
            words.append(word)
            rows.append(vector)
    if not words:
        raise ValueError(f"{path}: no word vectors")
    if count is not None and count != len(words):
        raise ValueError(f"{path}: the header promises {count} vectors, the file holds {len(words)} (truncated?)")
    return words, torch.from_numpy(np.stack(rows))


def write_word_vectors(path: str | Path, words: list[str], vectors: torch.Tensor) -> None:
    """Write the word2vec text format (with its ``<count> <dim>`` header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_text(path, "w") as f:
        f.write(f"{len(words)} {vectors.size(1)}\n")
        for word, row in zip(words, vectors.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{x:.5f}" for x in row) + "\n")


def train_word2vec(documents: Iterable[list[str]], dim: int = 128, window: int = 5, negatives: int = 5,
                   min_count: int = 5, max_words: int = 50000, epochs: int = 2, lr: float = 0.025,
                   subsample: float = 1e-4, seed: int | None = 1, workers: int = 1,
                   log=print) -> tuple[list[str], torch.Tensor]:
    """Skip-gram with negative sampling (Mikolov et al., 2013) over tokenized documents with gensim's
    ``Word2Vec`` (``sg=1, hs=0``); returns the words (most frequent first) and their ``(num_words, dim)``
    input vectors.

    The vocabulary is the ``max_words`` most frequent words occurring at least ``min_count`` times; other words
    are dropped from the text before windows are taken (as word2vec does). word2vec's other choices are
    gensim's: dynamic window, subsampling of frequent words (``subsample``, 0 = off), negatives from the unigram
    distribution to the 3/4, learning rate decaying linearly from ``lr`` to ``lr * 1e-4``. Documents longer
    than gensim's 10,000-token limit are cut into pieces of that length rather than truncated.

    Reproducibility: with a ``seed`` and ``workers=1`` gensim gives the same vectors on every run (initial
    vectors come from ``numpy.random.default_rng(seed)``); with more workers the order in which threads update
    the vectors varies, so ``seed`` with ``workers > 1`` raises ValueError. ``seed=None`` draws one.
    Raises ValueError when fewer than two words reach ``min_count``.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.models.word2vec_inner import MAX_WORDS_IN_BATCH

    class EpochLog(CallbackAny2Vec):  # gensim's loss is a running sum over the pairs of all epochs so far
        def __init__(self) -> None:
            self.epoch, self.previous = 0, 0.0

        def on_epoch_end(self, model) -> None:
            self.epoch += 1
            loss = model.get_latest_training_loss()
            log(f"epoch {self.epoch}/{epochs}: loss {loss - self.previous:,.0f}")
            self.previous = loss

    if seed is not None and workers != 1:
        raise ValueError(f"seed {seed} with {workers} workers: gensim is reproducible only with one worker")
    docs = [d[i:i + MAX_WORDS_IN_BATCH] for d in documents for i in range(0, len(d), MAX_WORDS_IN_BATCH)]
    counts = Counter(w for d in docs for w in d)
    words = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= min_count][:max_words]
    if len(words) < 2:
        raise ValueError(f"only {len(words)} words occur at least {min_count} times: too little text")
    model = Word2Vec(vector_size=dim, window=window, sg=1, hs=0, negative=negatives, min_count=1,
                     sample=subsample, alpha=lr, min_alpha=lr * 1e-4, workers=workers,
                     seed=int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed)
    model.build_vocab_from_freq({w: counts[w] for w in words}, corpus_count=len(docs))
    model.train(docs, total_examples=len(docs), epochs=epochs, compute_loss=True,
                callbacks=[EpochLog()])
    vectors = model.wv
    return list(vectors.index_to_key), torch.from_numpy(vectors.vectors.copy())


__all__ = ["read_word_vectors", "train_word2vec", "write_word_vectors"]
