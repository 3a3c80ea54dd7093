"""Flat ragged arrays on disk: many variable-length id sequences stored as one array of ids and one array of
offsets, so a corpus of millions of sentences costs two files instead of millions of Python lists (the layout
of fairseq's ``MMapIndexedDataset`` and Megatron's indexed datasets).

On disk (one folder, written once): ``NAME.ids`` (all ids, ``uint16`` when the vocabulary fits, else
``int32``), ``NAME.offsets`` (``int64``, N + 1 entries, sequence i is ``ids[offsets[i]:offsets[i + 1]]``),
``NAME.lengths`` (the N lengths again, ``uint16`` when they fit, else ``int32``: what filters and batching
read, 2 bytes a sequence) and ``NAME.json`` (dtypes and sizes). :class:`RaggedArray` reads sequence i with
positioned reads of its offsets and ids (see there why not through a memory map): the files' pages are
loaded on demand into the kernel's page cache and shared by every process (DataLoader workers, DDP ranks)
reading the same files, and the process's own memory stays flat whatever the corpus size.

A folder is filled in a temporary sibling and renamed into place when complete (:func:`build_folder`), under a
file lock, so concurrent processes (torchrun ranks) build it once and nobody reads a half-written folder.
"""

from __future__ import annotations

import fcntl
import json
import operator
import os
import shutil
import weakref
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def ids_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type for ``vocab_size`` ids: ``uint16`` up to 65,536, else ``int32``."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def index_dtype(count: int) -> np.dtype:
    """The smallest type for indices into ``count`` items: ``int32`` below 2**31, else ``int64``."""
    return np.dtype(np.int32) if count < 2**31 else np.dtype(np.int64)


def length_dtype(longest: int) -> np.dtype:
    """The stored type of sequence lengths up to ``longest``: ``uint16``, else ``int32``, else ``int64``."""
    for dtype in (np.uint16, np.int32):
        if longest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


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
        small = length_dtype(int(lengths.max()) if len(lengths) else 0)
        lengths.astype(small).tofile(self.folder / f"{self.name}.lengths")
        meta = {"dtype": self.dtype.name, "count": len(lengths), "ids": int(offsets[-1]),
                "lengths_dtype": np.dtype(small).name}
        (self.folder / f"{self.name}.json").write_text(json.dumps(meta), encoding="utf-8")
        return len(lengths)


class RaggedArray:
    """Read-only random access to a ragged array written by :class:`RaggedWriter`: ``len()``, ``arr[i]`` (a
    read-only numpy array of sequence i), ``arr.lengths`` ((N,) compact ints), ``arr.gather(indices)``.

    Sequence ``i`` is read with two positioned reads (``os.pread``: its two offsets, then its ids), not through
    a memory map: every page a mapping touches stays in the process's resident set for the mapping's life (with
    the kernel's fault-around neighbours, 64 KiB a touch), so random batches over a mapped corpus of millions
    of pairs grow the RSS step by step up to the files' size; read pages live in the kernel's page cache
    instead, shared by every process and never counted in one. The file descriptors stay open for the
    object's life (inherited by forked DataLoader workers; positioned reads share no file position).

    Raises ``FileNotFoundError`` naming the folder when a file is missing and ``ValueError`` when the files
    disagree (a truncated write)."""

    def __init__(self, folder: Path, name: str) -> None:
        folder = Path(folder)
        self.folder, self.name = folder, name
        meta_path = folder / f"{name}.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: no encoded array {name!r} in {folder}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.dtype, self._count = np.dtype(meta["dtype"]), int(meta["count"])
        self._lengths_file, self._lengths_dtype = folder / f"{name}.lengths", np.dtype(meta["lengths_dtype"])
        paths = {kind: folder / f"{name}.{kind}" for kind in ("ids", "offsets")}
        size = paths["ids"].stat().st_size // self.dtype.itemsize
        n_offsets = paths["offsets"].stat().st_size // _OFFSET.itemsize
        lengths = self._lengths_file.stat().st_size // self._lengths_dtype.itemsize
        if n_offsets != self._count + 1 or size != meta["ids"] or lengths != self._count:
            raise ValueError(f"{folder}: {name} is incomplete ({size} ids, {n_offsets} offsets, {lengths} lengths; "
                             f"expected {meta['ids']}, {self._count + 1} and {self._count}); delete the folder "
                             "to rebuild it")
        self._ids_fd = os.open(paths["ids"], os.O_RDONLY)
        self._offsets_fd = os.open(paths["offsets"], os.O_RDONLY)
        weakref.finalize(self, _close_all, (self._ids_fd, self._offsets_fd))

    def __reduce__(self):  # pickled (spawned DataLoader workers) as its folder: reopened, never copied
        return RaggedArray, (self.folder, self.name)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> np.ndarray:
        i = operator.index(i)
        if not -self._count <= i < self._count:
            raise IndexError(f"{self.folder / self.name}: sequence {i} of {self._count}")
        i %= self._count
        start, end = _read(self._offsets_fd, _OFFSET, 2, i * _OFFSET.itemsize, self.folder, self.name)
        return _read(self._ids_fd, self.dtype, int(end - start), int(start) * self.dtype.itemsize, self.folder,
                     self.name)

    @property
    def offsets(self) -> np.ndarray:
        """(N + 1,) int64 offsets, read whole from the file (tests and tools; training never needs them)."""
        return np.fromfile(self.folder / f"{self.name}.offsets", dtype=_OFFSET)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) length of every sequence in its compact stored dtype (``uint16`` when every length fits, else
        ``int32``; ``int64`` in caches written before), read from ``NAME.lengths``, not cached: 2 bytes a
        sequence instead of reading the 8-byte offsets. Widen before adding to it (``uint16`` wraps)."""
        return np.fromfile(self._lengths_file, dtype=self._lengths_dtype)

    def gather(self, indices: Iterable[int], suffix: Sequence[int] = ()) -> list[list[int]]:
        """Sequences ``indices`` as Python lists of ints, each followed by ``suffix``."""
        tail = list(suffix)
        return [self[int(i)].tolist() + tail for i in indices]


_OFFSET = np.dtype(np.int64)


def _read(fd: int, dtype: np.dtype, count: int, position: int, folder: Path, name: str) -> np.ndarray:
    """``count`` items of ``dtype`` at byte ``position`` of ``fd`` (one ``os.pread``); ``ValueError`` when the
    file ends first (truncated after it was opened)."""
    size = count * dtype.itemsize
    data = os.pread(fd, size, position) if size else b""
    if len(data) != size:
        raise ValueError(f"{folder}: {name} ends inside a sequence (truncated); delete the folder to rebuild it")
    return np.frombuffer(data, dtype=dtype)


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        os.close(fd)


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
    pairs of a corpus without copying them out of the files. ``keep``: (K,) integer indices, held in
    :func:`index_dtype` (int32 below 2**31 sequences: 4 bytes a kept sequence; not copied when it is already)."""

    def __init__(self, array: RaggedArray, keep: np.ndarray, suffix: Sequence[int] = ()) -> None:
        self.array, self.suffix = array, list(suffix)
        self.keep = np.asarray(keep).astype(index_dtype(len(array)), copy=False)

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i):  # int -> list[int]; slice -> list of lists
        if isinstance(i, slice):
            return self.array.gather(self.keep[i], self.suffix)
        return self.array[int(self.keep[i])].tolist() + self.suffix

    @property
    def lengths(self) -> np.ndarray:
        """(K,) int32 length of every kept sequence, suffix included (int64 past 2**31 - 1 tokens)."""
        stored = self.array.lengths
        out = stored[self.keep].astype(np.int64 if stored.dtype == np.int64 else np.int32)
        out += len(self.suffix)
        return out
