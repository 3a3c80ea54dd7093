"""Initialize a classifier from an earlier classify run (``model.init_from``): transfer learning when no
pretrained word vectors are at hand, e.g. an IMDB sentiment run as the starting point for SST-2.

The two runs may have different vocabularies and label sets. Rows of the embedding matrix are matched by
token string and rows of the output layer by label name; what has no match keeps its fresh initialization.
Every other tensor is copied by name and must have the same shape: a mismatch means the configs describe
different models, which is an error naming the tensor rather than a silently partial start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..training.checkpoint import CheckpointError, read_weights, resolve_weights
from .data import load_labels
from .text import Vocab, WordVocab, load_vocab
from .word_vectors import read_word_vectors

EMBEDDING = "embed.weight"
HEAD = ("head.weight", "head.bias")


@dataclass
class TransferReport:
    """What :func:`init_from_run` copied."""

    source: Path  # the weights file read
    copied: list[str]  # tensors copied whole
    tokens_matched: int  # embedding rows taken from the source
    labels_matched: int  # output rows taken from the source
    not_in_source: list[str]  # tensors of the model the source lacks (left as initialized)

    def summary(self, vocab_size: int, num_labels: int) -> str:
        text = (f"initialized from {self.source}: {len(self.copied)} tensors copied, "
                f"{self.tokens_matched}/{vocab_size} embedding rows and {self.labels_matched}/{num_labels} "
                f"output rows matched by token and label")
        if self.not_in_source:
            text += f"; not in the source (fresh): {', '.join(self.not_in_source)}"
        return text


def source_words(run_dir: str | Path | None, vectors: str | Path | None) -> list[str]:
    """The words a model starts from: ``init_from``'s vocabulary, then the ``pretrained_embeddings`` file's."""
    words: list[str] = []
    if run_dir is not None:
        source = load_vocab(Path(run_dir))
        if not isinstance(source, WordVocab):
            raise ValueError("model.init_vocab 'union' needs the word tokenizer in the init_from run")
        words += source.itos
    if vectors is not None:
        words += read_word_vectors(vectors)[0]
    return words


def union_vocab(vocab: Vocab, words: list[str]) -> WordVocab:
    """``vocab`` followed by every one of ``words`` it lacks (``model.init_vocab: union``); ids unchanged."""
    if not isinstance(vocab, WordVocab):
        raise ValueError("model.init_vocab 'union' needs the word tokenizer (data.tokenizer: word)")
    known = set(vocab.itos)
    extra = [w for w in dict.fromkeys(words) if w not in known]
    return WordVocab(vocab.itos + extra)


@torch.no_grad()
def init_from_vectors(model: nn.Module, path: str | Path, vocab: Vocab) -> int:
    """Copy pretrained word vectors into ``model``'s embedding rows of the words they cover; returns how many.
    The vectors are scaled so that their standard deviation is that of the model's own initialization, which
    keeps the words the file lacks (initialized as usual) on the same scale."""
    words, vectors = read_word_vectors(path)
    table = model.state_dict()[EMBEDDING]
    vectors = vectors * (table[3:].std() / vectors.std().clamp_min(1e-12))  # rows 0-2: <pad>, <unk>, <cls>
    return _copy_rows(table, vectors, vocab.itos, words, EMBEDDING, Path(path))


def _copy_rows(target: torch.Tensor, source: torch.Tensor, target_keys: list[str], source_keys: list[str],
               name: str, path: Path) -> int:
    """Copy ``source`` rows into ``target`` rows with the same key; returns the number copied."""
    if target.shape[1:] != source.shape[1:]:
        raise CheckpointError(f"{path}: {name} rows have shape {tuple(source.shape[1:])}, the model's "
                              f"{tuple(target.shape[1:])} (init_from needs the same model dimensions)")
    if source.size(0) != len(source_keys):
        raise CheckpointError(f"{path}: {name} has {source.size(0)} rows but the run lists {len(source_keys)}")
    index = {key: i for i, key in enumerate(source_keys)}
    pairs = [(i, index[key]) for i, key in enumerate(target_keys) if key in index]
    if pairs:
        dst, src = zip(*pairs, strict=True)
        target[list(dst)] = source[list(src)].to(target.dtype)
    return len(pairs)


@torch.no_grad()
def init_from_run(model: nn.Module, run_dir: str | Path, vocab: Vocab, labels: list[str]) -> TransferReport:
    """Copy a finished run's best weights into ``model`` (built for ``vocab`` and ``labels``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"model.init_from: {run_dir} is not a run directory")
    try:
        source_labels = load_labels(run_dir)
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(f"model.init_from: {e} (not a classify run?)") from e
    source_tokens = load_vocab(run_dir).itos
    path = resolve_weights(run_dir, "best")
    source = read_weights(path)

    rows = {EMBEDDING: (vocab.itos, source_tokens), **{name: (labels, source_labels) for name in HEAD}}
    matched = {name: 0 for name in rows}
    copied, not_in_source = [], []
    for name, tensor in model.state_dict().items():
        if name not in source:
            not_in_source.append(name)
        elif name in rows:
            matched[name] = _copy_rows(tensor, source[name], *rows[name], name, path)
        elif tensor.shape != source[name].shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(source[name].shape)}, the model's "
                                  f"{tuple(tensor.shape)} (init_from needs the same model dimensions)")
        else:
            tensor.copy_(source[name])
            copied.append(name)
    if not copied and not any(matched.values()):
        raise CheckpointError(f"{path}: no tensor of the model is in this run (different model type?)")
    return TransferReport(path, copied, matched[EMBEDDING], matched[HEAD[0]], not_in_source)
