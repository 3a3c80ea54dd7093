"""Opening text files that may be gzip-compressed: one rule for every reader and writer in the project.

A path whose last suffix is ``.gz`` is read and written through :func:`gzip.open`; any other path through the
built-in :func:`open`. Corpora (``train.de.gz``), labelled documents (``train.csv.gz``) and word vectors
(``vectors.txt.gz``) all go through :func:`open_text`.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Any

_MODES = ("r", "w", "a", "x", "rb", "wb", "ab", "xb")


def is_gzip(path: str | Path) -> bool:
    """Whether ``path`` is read and written gzip-compressed (its last suffix is ``.gz``)."""
    return Path(path).suffix == ".gz"


def open_text(path: str | Path, mode: str = "r", encoding: str = "utf-8", newline: str | None = None) -> IO[Any]:
    """Open ``path`` (``.gz``: decompressed/compressed on the fly) like the built-in :func:`open`.

    Args:
        path: the file; ``.gz`` as its last suffix selects gzip.
        mode: ``r``, ``w``, ``a`` or ``x`` (text, with ``encoding`` and ``newline``), or the same with ``b``
            (bytes; ``encoding`` and ``newline`` are ignored).
        encoding: text encoding of the (decompressed) content.
        newline: as for :func:`open` (``""`` for the :mod:`csv` module).

    Returns:
        A file object; text mode yields ``str`` lines, binary mode ``bytes``.

    Raises:
        ValueError: for a mode outside the list above.
        OSError: from opening the file (``FileNotFoundError`` names the path).
    """
    if mode not in _MODES:
        raise ValueError(f"open_text: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    binary = mode.endswith("b")
    if is_gzip(path):
        if binary:
            return gzip.open(path, mode)
        return gzip.open(path, mode + "t", encoding=encoding, newline=newline)
    if binary:
        return open(path, mode)
    return open(path, mode, encoding=encoding, newline=newline)
