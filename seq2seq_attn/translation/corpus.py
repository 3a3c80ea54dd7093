"""Reading parallel corpora: aligned text files (plain or .gz), TSV, or a Hugging Face dataset.

Every ``read_*`` function returns two equally long lists of stripped strings; the ``iter_*`` functions stream
the same pairs one at a time (:func:`iter_corpus`: a corpus larger than memory), and :func:`corpus_digest`
fingerprints a split's content (the key of encoded-corpus caches). Bad input gets an error naming the file(s):
different line counts, invalid UTF-8 (with the line number), missing TSV columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

from ..layers import open_text
from ..paths import offline_datasets, resolve_path
from .config import CorpusConfig, DataConfig


def iter_lines(path: str | Path, strip: bool = True) -> Iterator[str]:
    """The lines of a UTF-8 text file (``.gz`` decompressed) one at a time, stripped of surrounding
    whitespace unless ``strip=False`` (TSV: empty trailing columns must survive). Lines end at ``\\n`` only
    (a ``\\r\\n`` ending loses its ``\\r``), as ``translate`` reads stdin: a lone ``\\r`` inside a line does not
    make two lines of one, so ``test --output`` lines up with the source file. Raises ``ValueError`` naming
    the file and line on invalid UTF-8."""
    path = Path(path)
    with open_text(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):  # a binary file's lines end at b"\n" only
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: invalid UTF-8 (byte {e.start}: {e.reason})") from None
            yield text.strip() if strip else text


def read_lines(path: str | Path, strip: bool = True) -> list[str]:
    """All lines of a text file as :func:`iter_lines` reads them."""
    return list(iter_lines(path, strip))


def iter_parallel(src_path: str | Path, tgt_path: str | Path) -> Iterator[tuple[str, str]]:
    """Aligned lines of two files, streamed. Raises ``ValueError`` naming both files and their line counts
    when they differ in length (after the shorter one ends)."""
    missing = object()
    pairs = zip_longest(iter_lines(src_path), iter_lines(tgt_path), fillvalue=missing)
    for count, (src, tgt) in enumerate(pairs):
        if src is missing or tgt is missing:
            rest = 1 + sum(1 for _ in pairs)
            n_src, n_tgt = (count, count + rest) if src is missing else (count + rest, count)
            raise ValueError(f"parallel files differ in length: {src_path} has {n_src} lines, "
                             f"{tgt_path} has {n_tgt} lines")
        yield src, tgt


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    pairs = list(iter_parallel(src_path, tgt_path))
    return [s for s, _ in pairs], [t for _, t in pairs]


def iter_tsv(path: str | Path, src_column: int = 0, tgt_column: int = 1) -> Iterator[tuple[str, str]]:
    """(source, target) columns of each line of a TSV file, streamed; a blank line is an empty pair."""
    need = max(src_column, tgt_column) + 1
    for number, line in enumerate(iter_lines(path, strip=False), start=1):
        if not line.strip():
            yield "", ""
            continue
        cols = line.split("\t")
        if len(cols) < need:
            raise ValueError(f"{path}:{number}: expected at least {need} tab-separated columns, got {len(cols)}")
        yield cols[src_column].strip(), cols[tgt_column].strip()


def read_tsv(path: str | Path, src_column: int = 0, tgt_column: int = 1) -> tuple[list[str], list[str]]:
    pairs = list(iter_tsv(path, src_column, tgt_column))
    return [s for s, _ in pairs], [t for _, t in pairs]


def _field(record: dict, dotted: str, where: str) -> str:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{where}: record has no field {dotted!r} (fields: {', '.join(record)})")
        value = value[part]
    return str(value).strip()


def iter_hf(name: str, config: str | None, split: str, src_field: str, tgt_field: str,
            data_files: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """A split of a Hugging Face dataset (``datasets.load_dataset``); fields may be dotted (``translation.de``).
    Offline (:func:`~seq2seq_attn.paths.offline_datasets`): local builders (``json``, ``csv``) with
    ``data_files`` and the local cache only."""
    datasets = offline_datasets()

    ds = datasets.load_dataset(name, config, split=split, data_files=data_files)
    where = f"dataset {name}" + (f"/{config}" if config else "") + f" split {split}"
    for record in ds:
        yield _field(record, src_field, where), _field(record, tgt_field, where)


def read_hf(name: str, config: str | None, split: str, src_field: str, tgt_field: str,
            data_files: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    pairs = list(iter_hf(name, config, split, src_field, tgt_field, data_files))
    return [s for s, _ in pairs], [t for _, t in pairs]


def describe_split(split: CorpusConfig, data: DataConfig) -> str:
    """The split's files (or dataset) for messages."""
    if split.tsv is not None:
        return str(resolve_path(split.tsv))
    if split.src is not None:
        return f"{resolve_path(split.src)} + {resolve_path(split.tgt)}"
    if data.hf is None:
        raise ValueError(f"hf_split {split.hf_split!r} given but data.hf (dataset name and fields) is missing")
    return f"{data.hf.name}:{split.hf_split}"


def iter_corpus(split: CorpusConfig, data: DataConfig) -> Iterator[tuple[str, str]]:
    """The (source, target) pairs of one split as configured, streamed (never the whole corpus in memory)."""
    if split.tsv is not None:
        return iter_tsv(resolve_path(split.tsv), data.tsv_src_column, data.tsv_tgt_column)
    if split.src is not None:
        return iter_parallel(resolve_path(split.src), resolve_path(split.tgt))
    describe_split(split, data)  # raises when data.hf is missing
    hf = data.hf
    return iter_hf(hf.name, hf.config, split.hf_split, hf.src_field, hf.tgt_field, hf.data_files)


def corpus_digest(split: CorpusConfig, data: DataConfig) -> str:
    """SHA-256 of what the split reads: the bytes of its file(s) and the TSV columns, or the Hugging Face
    dataset's name, split and fingerprint. Equal digests mean equal pairs (the key of encoded-corpus caches)."""
    h = hashlib.sha256()
    if split.tsv is not None or split.src is not None:
        paths = [split.tsv] if split.tsv is not None else [split.src, split.tgt]
        if split.tsv is not None:
            h.update(f"tsv {data.tsv_src_column} {data.tsv_tgt_column}".encode())
        for spec in paths:
            with open(resolve_path(spec), "rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
        return h.hexdigest()
    describe_split(split, data)
    hf = data.hf
    ds = offline_datasets().load_dataset(hf.name, hf.config, split=split.hf_split, data_files=hf.data_files)
    h.update(repr((hf.name, hf.config, split.hf_split, hf.src_field, hf.tgt_field, ds._fingerprint)).encode())
    return h.hexdigest()


def read_corpus(split: CorpusConfig, data: DataConfig) -> tuple[list[str], list[str], str]:
    """Read one split as configured; returns (sources, targets, description for messages)."""
    where = describe_split(split, data)
    pairs = list(iter_corpus(split, data))
    return [s for s, _ in pairs], [t for _, t in pairs], where
