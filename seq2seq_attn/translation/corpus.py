"""Reading parallel corpora: aligned text files (plain or .gz), TSV, or a Hugging Face dataset.

Every reader returns two equally long lists of stripped strings. Bad input gets an error naming the file(s):
different line counts, invalid UTF-8 (with the line number), missing TSV columns.
"""

from __future__ import annotations

from pathlib import Path

from ..layers import open_text
from ..paths import offline_datasets, resolve_path
from .config import CorpusConfig, DataConfig


def read_lines(path: str | Path, strip: bool = True) -> list[str]:
    """All lines of a UTF-8 text file (``.gz`` decompressed), stripped of surrounding whitespace unless
    ``strip=False`` (TSV: empty trailing columns must survive)."""
    path = Path(path)
    with open_text(path, "rb") as fh:
        raw = fh.read()
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
            lines.append(text.strip() if strip else text)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{number}: invalid UTF-8 (byte {e.start}: {e.reason})") from None
    return lines


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise ValueError(f"parallel files differ in length: {src_path} has {len(src)} lines, "
                         f"{tgt_path} has {len(tgt)} lines")
    return src, tgt


def read_tsv(path: str | Path, src_column: int = 0, tgt_column: int = 1) -> tuple[list[str], list[str]]:
    src, tgt = [], []
    need = max(src_column, tgt_column) + 1
    for number, line in enumerate(read_lines(path, strip=False), start=1):
        if not line.strip():
            src.append("")
            tgt.append("")
            continue
        cols = line.split("\t")
        if len(cols) < need:
            raise ValueError(f"{path}:{number}: expected at least {need} tab-separated columns, got {len(cols)}")
        src.append(cols[src_column].strip())
        tgt.append(cols[tgt_column].strip())
    return src, tgt


def _field(record: dict, dotted: str, where: str) -> str:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{where}: record has no field {dotted!r} (fields: {', '.join(record)})")
        value = value[part]
    return str(value).strip()


def read_hf(name: str, config: str | None, split: str, src_field: str, tgt_field: str,
            data_files: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """A split of a Hugging Face dataset (``datasets.load_dataset``); fields may be dotted (``translation.de``).
    Offline (:func:`~seq2seq_attn.paths.offline_datasets`): local builders (``json``, ``csv``) with
    ``data_files`` and the local cache only."""
    datasets = offline_datasets()

    ds = datasets.load_dataset(name, config, split=split, data_files=data_files)
    where = f"dataset {name}" + (f"/{config}" if config else "") + f" split {split}"
    src, tgt = [], []
    for record in ds:
        src.append(_field(record, src_field, where))
        tgt.append(_field(record, tgt_field, where))
    return src, tgt


def read_corpus(split: CorpusConfig, data: DataConfig) -> tuple[list[str], list[str], str]:
    """Read one split as configured; returns (sources, targets, description for messages)."""
    if split.tsv is not None:
        path = resolve_path(split.tsv)
        return (*read_tsv(path, data.tsv_src_column, data.tsv_tgt_column), str(path))
    if split.src is not None:
        src_path, tgt_path = resolve_path(split.src), resolve_path(split.tgt)
        return (*read_parallel(src_path, tgt_path), f"{src_path} + {tgt_path}")
    if data.hf is None:
        raise ValueError(f"hf_split {split.hf_split!r} given but data.hf (dataset name and fields) is missing")
    hf = data.hf
    src, tgt = read_hf(hf.name, hf.config, split.hf_split, hf.src_field, hf.tgt_field, hf.data_files)
    return src, tgt, f"{hf.name}:{split.hf_split}"
