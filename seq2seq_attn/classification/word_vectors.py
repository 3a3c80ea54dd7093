"""Word vectors for ``model.pretrained_embeddings``: reading and writing the word2vec/GloVe text format, and
training skip-gram with negative sampling (Mikolov et al., 2013, "Distributed Representations of Words and
Phrases and their Compositionality") on local text when no pretrained vectors can be downloaded.

The text format is one word per line followed by its numbers, separated by spaces; word2vec's first line
``<count> <dim>`` is optional (GloVe files have none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..layers import open_text


def read_word_vectors(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """The words and a ``(num_words, dim)`` float tensor of a word2vec/GloVe text file (plain or .gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: word vectors not found")
    words: list[str] = []
    rows: list[list[float]] = []
    dim = None
    with open_text(path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header
                continue
            if not line.strip():
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) != dim + 1:
                raise ValueError(f"{path}: line {number}: {len(parts) - 1} numbers, expected {dim}")
            try:
                rows.append([float(x) for x in parts[1:]])
            except ValueError as e:
                raise ValueError(f"{path}: line {number}: not a number ({e})") from e
            words.append(parts[0])
    if not words:
        raise ValueError(f"{path}: no word vectors")
    return words, torch.tensor(rows, dtype=torch.float32)


def write_word_vectors(path: str | Path, words: list[str], vectors: torch.Tensor) -> None:
    """Write the word2vec text format (with its ``<count> <dim>`` header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_text(path, "w") as f:
        f.write(f"{len(words)} {vectors.size(1)}\n")
        for word, row in zip(words, vectors.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{x:.5f}" for x in row) + "\n")


class SkipGram(nn.Module):
    """Input and output embeddings; the loss is skip-gram's with negative sampling, summed over the batch."""

    def __init__(self, num_words: int, dim: int) -> None:
        super().__init__()
        self.inputs = nn.Embedding(num_words, dim, sparse=True)
        self.outputs = nn.Embedding(num_words, dim, sparse=True)
        nn.init.uniform_(self.inputs.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.outputs.weight)

    def forward(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        # center, context (B,), negatives (B, K)
        c = self.inputs(center)  # (B, D)
        pos = (c * self.outputs(context)).sum(-1)  # (B,)
        neg = torch.bmm(self.outputs(negatives), c.unsqueeze(-1)).squeeze(-1)  # (B, K)
        return -(nn.functional.logsigmoid(pos).sum() + nn.functional.logsigmoid(-neg).sum())


def train_skipgram(documents: Iterable[list[str]], dim: int = 128, window: int = 5, negatives: int = 5,
                   min_count: int = 5, max_words: int = 50000, epochs: int = 2, lr: float = 0.025,
                   subsample: float = 1e-4, batch_size: int = 4096, seed: int = 1,
                   log=print) -> tuple[list[str], torch.Tensor]:
    """Skip-gram with negative sampling over tokenized documents; returns the words (most frequent first)
    and their input vectors. word2vec's choices: dynamic window, frequent-word subsampling, negatives from
    the unigram distribution to the 3/4, SGD with a learning rate decaying linearly to zero."""
    docs = [d for d in documents if d]
    counts = Counter(w for d in docs for w in d)
    words = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= min_count][:max_words]
    if len(words) < 2:
        raise ValueError(f"only {len(words)} words occur at least {min_count} times: too little text")
    index = {w: i for i, w in enumerate(words)}
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    # Documents as one id stream with -1 between them, so no window crosses a document boundary.
    stream = np.fromiter((index.get(w, -2) for d in docs for w in [*d, None]), dtype=np.int64)
    stream = stream[stream != -2]  # drop rare words (as word2vec does), keep the boundaries (-1 from None)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    share = freq / freq.sum()
    keep_prob = np.minimum(1.0, np.sqrt(subsample / share) + subsample / share)
    noise = torch.from_numpy(freq ** 0.75 / (freq ** 0.75).sum())
    model = SkipGram(len(words), dim)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    total_pairs_estimate = None
    done_pairs = 0
    for epoch in range(epochs):
        ids = stream[(stream < 0) | (rng.random(len(stream)) < keep_prob[np.maximum(stream, 0)])]
        reach = rng.integers(1, window + 1, len(ids))  # dynamic window: each centre draws its own size
        centers, contexts = [], []
        for offset in range(1, window + 1):
            a, b = ids[:-offset], ids[offset:]
            # a pair is valid when neither end is a boundary and no boundary lies between them
            between = np.zeros(len(a), dtype=bool)
            for k in range(1, offset):
                between |= ids[k:len(ids) - offset + k] < 0
            ok = (a >= 0) & (b >= 0) & ~between
            fwd = ok & (reach[:-offset] >= offset)
            bwd = ok & (reach[offset:] >= offset)
            centers += [a[fwd], b[bwd]]
            contexts += [b[fwd], a[bwd]]
        center = np.concatenate(centers)
        context = np.concatenate(contexts)
        order = rng.permutation(len(center))
        center, context = torch.from_numpy(center[order]), torch.from_numpy(context[order])
        if total_pairs_estimate is None:
            total_pairs_estimate = len(center) * epochs
        loss_sum, seen = 0.0, 0
        for start in range(0, len(center), batch_size):
            c, o = center[start:start + batch_size], context[start:start + batch_size]
            neg = torch.multinomial(noise, c.numel() * negatives, replacement=True).view(-1, negatives)
            for group in optimizer.param_groups:
                group["lr"] = lr * max(1e-4, 1.0 - done_pairs / total_pairs_estimate)
            optimizer.zero_grad()
            loss = model(c, o, neg)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            seen += c.numel()
            done_pairs += c.numel()
        log(f"epoch {epoch + 1}/{epochs}: {len(center):,} pairs, loss per pair {loss_sum / max(1, seen):.4f}")
    return words, model.inputs.weight.detach().clone()


__all__ = ["SkipGram", "read_word_vectors", "train_skipgram", "write_word_vectors"]
