"""Flat, memory-mapped ragged arrays: many variable-length id sequences stored as one array of ids and one
array of offsets, so a corpus of millions of sentences costs two numpy memory maps instead of millions of
Python lists (as fairseq's ``MMapIndexedDataset`` and Megatron's indexed datasets do).

On disk (one folder, written once): ``NAME.ids`` (all ids, ``uint16`` when the vocabulary fits, else
``int32``), ``NAME.offsets`` (``int64``, N + 1 entries, sequence i is ``ids[offsets[i]:offsets[i + 1]]``),
``NAME.lengths`` (the N lengths again, ``uint16`` when they fit: what batching reads) and ``NAME.json`` (dtypes
and sizes). Both arrays are read through ``numpy.memmap`` in mode ``"r"``: the pages are
loaded on demand and shared by every process (DataLoader workers, DDP ranks) reading the same files.

A folder is filled in a temporary sibling and renamed into place when complete (:func:`build_folder`), under a
file lock, so concurrent processes (torchrun ranks) build it once and nobody reads a half-written folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def ids_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type for ``vocab_size`` ids: ``uint16`` up to 65,536, else ``int32``."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


class RaggedWriter:
    """Appends sequences to ``folder/NAME.ids`` chunk by chunk (nothing but the current chunk in memory);
    :meth:`close` writes the offsets and ``NAME.json``."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype) -> None:
        self.folder, self.name, self.dtype = Path(folder), name, np.dtype(dtype)
        self._ids = open(self.folder / f"{name}.ids", "wb")  # noqa: SIM115 (closed in close())
        self._lengths: list[np.ndarray] = []
        self._limit = np.iinfo(self.dtype).max

    def extend(self, seqs: Sequence[Sequence[int]]) -> None:
        """Append ``seqs`` (lists of ids). Raises ``ValueError`` when an id does not fit the dtype."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(lengths.sum()))
        if flat.size and (flat.min() < 0 or flat.max() > self._limit):
            raise ValueError(f"{self.name}: id outside 0..{self._limit} for {self.dtype}")
        flat.astype(self.dtype).tofile(self._ids)
        self._lengths.append(lengths)

    def close(self) -> int:
        """Finish the files; returns the number of sequences."""
        self._ids.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        offsets.tofile(self.folder / f"{self.name}.offsets")
        small = np.dtype(np.uint16) if not len(lengths) or lengths.max() <= np.iinfo(np.uint16).max else np.int64
        lengths.astype(small).tofile(self.folder / f"{self.name}.lengths")
        meta = {"dtype": self.dtype.name, "count": len(lengths), "ids": int(offsets[-1]),
                "lengths_dtype": np.dtype(small).name}
        (self.folder / f"{self.name}.json").write_text(json.dumps(meta), encoding="utf-8")
        return len(lengths)


class RaggedArray:
    """Read-only view of a ragged array written by :class:`RaggedWriter`: ``len()``, ``arr[i]`` (a numpy
    view of sequence i), ``arr.lengths`` ((N,) int64). Raises ``FileNotFoundError`` naming the folder when a
    file is missing and ``ValueError`` when the files disagree (a truncated write)."""

    def __init__(self, folder: Path, name: str) -> None:
        folder = Path(folder)
        self.folder, self.name = folder, name
        meta_path = folder / f"{name}.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: no encoded array {name!r} in {folder}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self._lengths_file, self._lengths_dtype = folder / f"{name}.lengths", meta["lengths_dtype"]
        self.offsets = np.memmap(folder / f"{name}.offsets", dtype=np.int64, mode="r")
        size = (folder / f"{name}.ids").stat().st_size // np.dtype(meta["dtype"]).itemsize
        if len(self.offsets) != meta["count"] + 1 or size != meta["ids"]:
            raise ValueError(f"{folder}: {name} is incomplete ({size} ids, {len(self.offsets)} offsets; "
                             f"expected {meta['ids']} and {meta['count'] + 1}); delete the folder to rebuild it")
        # np.memmap refuses an empty file: an empty corpus has no ids to map.
        self.ids = (np.memmap(folder / f"{name}.ids", dtype=meta["dtype"], mode="r") if size
                    else np.zeros(0, dtype=meta["dtype"]))

    def __reduce__(self):  # pickled (spawned DataLoader workers) as its folder: reopened, never copied
        return RaggedArray, (self.folder, self.name)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 length of every sequence, read from the compact ``NAME.lengths`` file (2 bytes a
        sequence when they fit) rather than the offsets, so that the offsets' pages stay on disk until a batch
        needs them; not cached."""
        return np.fromfile(self._lengths_file, dtype=self._lengths_dtype).astype(np.int64)

    def gather(self, indices: Iterable[int], suffix: Sequence[int] = ()) -> list[list[int]]:
        """Sequences ``indices`` as Python lists of ints, each followed by ``suffix``."""
        tail = list(suffix)
        return [self[int(i)].tolist() + tail for i in indices]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_folder(folder: Path, fill: Callable[[Path], None]) -> Path:
    """``folder``, built by ``fill(tmp)`` in a temporary sibling and renamed into place when ``fill`` returns,
    unless it exists already. Holds ``folder.lock`` meanwhile, so concurrent callers build it once; an error
    in ``fill`` removes the temporary folder and leaves nothing behind."""
    folder = Path(folder)
    with _locked(folder.with_name(folder.name + ".lock")):
        if folder.is_dir():
            return folder
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            fill(tmp)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return folder


class RaggedView(Sequence):
    """Sequences ``array[keep[i]]`` as lists of ints followed by ``suffix`` (e.g. EOS): the filtered training
    pairs of a corpus without copying them out of the memory map. ``keep``: (K,) int64 indices."""

    def __init__(self, array: RaggedArray, keep: np.ndarray, suffix: Sequence[int] = ()) -> None:
        self.array, self.keep, self.suffix = array, np.asarray(keep, dtype=np.int64), list(suffix)

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i):  # int -> list[int]; slice -> list of lists
        if isinstance(i, slice):
            return self.array.gather(self.keep[i], self.suffix)
        return self.array[int(self.keep[i])].tolist() + self.suffix

    @property
    def lengths(self) -> np.ndarray:
        """(K,) int64 length of every kept sequence, suffix included."""
        return self.array.lengths[self.keep] + len(self.suffix)
