"""Length-bucketed batches of example indices, for every sequence task.

Two modes, both deterministic for a given random generator:

* token count (``max_tokens``; fairseq's rule): examples sorted by length (ties broken at random), each batch
  filled while ``len(batch) * longest <= max_tokens``, then the batch order shuffled;
* sentence count (``batch_size``): a random order, sorted by length inside chunks of 50 batches when ``bucket``
  (similar lengths per batch, little padding, still a random order), cut into batches, the batch order shuffled.

``rng=None`` is the evaluation order, nothing random: token count as above without shuffling; sentence count
sorted by length over the whole set (stable) when ``bucket``, the input order otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ragged import index_dtype

#: Sentence-count mode sorts by length inside chunks of this many batches.
BUCKET_BATCHES = 50


def _token_batches(lengths: np.ndarray, max_tokens: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Greedy fill in length order, one batch at a time with array operations (no Python object per example,
    so memory stays flat for millions of pairs). In sorted order the batch's longest example is its last, so a
    batch starting at ``s`` holds the longest run ``k`` with ``sorted[s + j] * (j + 1) <= max_tokens`` for all
    ``j < k`` (at least one example: an over-long one gets a batch of its own)."""
    index = index_dtype(len(lengths))
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        ties = np.arange(len(lengths), dtype=index)
        rng.shuffle(ties)  # == rng.permutation(len(lengths)) (same draws), in 4-byte ints
        order = np.lexsort((ties, lengths))  # by length, ties at random
        del ties
    order = order.astype(index, copy=False)
    sorted_lengths = lengths[order]  # the stored dtype; widened window by window below
    batches: list[np.ndarray] = []
    start, n = 0, len(order)
    while start < n:
        shortest = int(sorted_lengths[start])  # no batch from here holds more than max_tokens // shortest
        room = n - start if shortest == 0 else max(1, max_tokens // shortest)
        window = sorted_lengths[start:start + room].astype(np.int64) * np.arange(1, min(room, n - start) + 1)
        over = np.flatnonzero(window > max_tokens)
        size = max(1, int(over[0]) if len(over) else len(window))
        batches.append(order[start:start + size])
        start += size
    return batches


def _sentence_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                      bucket: bool) -> list[list[int]]:
    if rng is None:
        order = np.argsort(lengths, kind="stable") if bucket else np.arange(len(lengths))
    else:
        order = rng.permutation(len(lengths))
    if bucket and rng is not None and len(order):
        chunk = batch_size * BUCKET_BATCHES
        parts = np.array_split(order, max(1, -(-len(order) // chunk)))
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def length_batches(lengths: Sequence[int] | np.ndarray, *, batch_size: int | None = None,
                   max_tokens: int | None = None, rng: np.random.Generator | None = None,
                   bucket: bool = True, shuffle_rng: np.random.Generator | None = None
                   ) -> list[list[int]] | list[np.ndarray]:
    """Batches of indices into ``lengths`` (every index exactly once): lists of ints in sentence-count mode,
    integer arrays (views of one int32 order, flat in memory for millions of examples) in token-count mode.

    Args:
        lengths: (N,) length of each example in tokens (for pairs: the longer side, as the caller decides).
        batch_size: sentence-count mode: at most this many examples a batch.
        max_tokens: token-count mode: ``len(batch) * longest`` at most this (an example longer than the
            budget alone still gets its own batch). Exactly one of ``batch_size`` and ``max_tokens``.
        rng: the source of randomness (e.g. ``np.random.default_rng([seed, epoch])``), used first for the
            order inside lengths and then for the batch order; ``None``: the evaluation order (see above).
        bucket: sentence-count mode only: sort by length (inside chunks of :data:`BUCKET_BATCHES` batches when
            shuffling); token-count mode always sorts.
        shuffle_rng: the source of randomness for the batch order alone, when it must differ from ``rng``
            (translation keeps the two streams it has always used, so its runs repeat batch for batch).

    Raises:
        ValueError: when not exactly one of ``batch_size``/``max_tokens`` is given, or it is not positive.
    """
    if (batch_size is None) == (max_tokens is None):
        raise ValueError("length_batches: give exactly one of batch_size and max_tokens")
    size = batch_size if batch_size is not None else max_tokens
    if size is None or size < 1:
        name = "batch_size" if batch_size is not None else "max_tokens"
        raise ValueError(f"length_batches: {name} must be positive, got {size}")
    lengths = np.asarray(lengths)
    if max_tokens is not None:
        batches = _token_batches(lengths, max_tokens, rng)
    else:
        batches = _sentence_batches(lengths, batch_size, rng, bucket)
    if rng is not None:
        shuffle = rng if shuffle_rng is None else shuffle_rng
        batches = [batches[i] for i in shuffle.permutation(len(batches))]
    return batches
