"""Reading labelled documents: CSV/TSV (optionally gzipped), JSONL, ``<label> <text>`` lines, TREC lines and
Hugging Face datasets.

Every reader yields :class:`RawExample` rows that remember where they came from, so a bad row (missing text,
unknown label, unparsable line) is reported as ``FILE: row N: reason``. With ``skip_bad_rows`` such rows are
dropped and counted instead.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..layers import open_text
from ..paths import offline_datasets, resolve_path
from ..training.checkpoint import atomic_write_files
from .config import DataConfig

#: Builders of ``datasets.load_dataset`` that read local files (their split entries are paths).
HF_FILE_BUILDERS = ("csv", "json", "parquet", "text", "arrow")


@dataclass
class RawExample:
    text: str
    label: str  # the display name, after ``label_names``
    source: str  # "file: row N" for error messages


class BadRow(ValueError):
    """A row that cannot be used; the message names the file and row."""


@dataclass
class SplitData:
    examples: list[RawExample]
    num_bad: int = 0


_FIELD_LIMIT = 2**31 - 1  # the largest value csv.field_size_limit takes on every platform (a C long)


def _label_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _row(text: object, label: object, source: str, cfg: DataConfig) -> RawExample:
    if not isinstance(text, str) or not text.strip():
        raise BadRow(f"{source}: missing text (column {cfg.text_column!r})")
    name = _label_str(label)
    if name is None:
        raise BadRow(f"{source}: missing label (column {cfg.label_column!r})")
    if cfg.label_names is not None:
        if name not in cfg.label_names:
            known = ", ".join(sorted(cfg.label_names))
            raise BadRow(f"{source}: label {name!r} is not in data.label_names ({known})")
        name = cfg.label_names[name]
    return RawExample(text, name, source)


def _read_delimited(path: Path, cfg: DataConfig, delimiter: str) -> Iterator[RawExample | BadRow]:
    # Long documents are normal input for a document classifier: lift the csv module's 128 KiB field limit.
    csv.field_size_limit(_FIELD_LIMIT)
    with open_text(path, encoding=cfg.encoding, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = reader.fieldnames or []
        for column in (cfg.text_column, cfg.label_column):
            if column not in header:
                raise ValueError(f"{path}: no column {column!r} in the header ({', '.join(header)})")
        for i, row in enumerate(reader, start=1):
            source = f"{path}: row {i} (line {reader.line_num})"
            if None in row or any(v is None for v in row.values()):
                yield BadRow(f"{source}: expected {len(header)} fields")
                continue
            try:
                yield _row(row[cfg.text_column], row[cfg.label_column], source, cfg)
            except BadRow as e:
                yield e


def _read_lines(path: Path, cfg: DataConfig) -> Iterator[RawExample | BadRow]:
    with open_text(path, encoding=cfg.encoding, newline="") as fh:
        for i, line in enumerate(fh, start=1):
            line = line.strip()
            source = f"{path}: row {i}"
            if not line:
                continue  # blank lines separate nothing in these formats
            try:
                if cfg.format == "jsonl":
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise BadRow(f"{source}: invalid JSON ({e.msg})") from None
                    if not isinstance(obj, dict):
                        raise BadRow(f"{source}: expected a JSON object")
                    yield _row(obj.get(cfg.text_column), obj.get(cfg.label_column), source, cfg)
                elif cfg.format == "label_first":
                    label, _, text = line.partition(" ")
                    yield _row(text, label, source, cfg)
                else:  # trec: "COARSE:fine question"
                    label, _, text = line.partition(" ")
                    coarse, colon, fine = label.partition(":")
                    if not colon or not coarse or not fine:
                        raise BadRow(f"{source}: expected 'COARSE:fine question', got {line[:40]!r}")
                    yield _row(text, label if cfg.trec_fine else coarse, source, cfg)
            except BadRow as e:
                yield e


def _read_hf(spec: str, cfg: DataConfig) -> Iterator[RawExample | BadRow]:
    datasets = offline_datasets()  # never download: local files and the local cache only

    if cfg.hf_name in HF_FILE_BUILDERS:
        path = resolve_path(spec)
        ds = datasets.load_dataset(cfg.hf_name, cfg.hf_config, data_files={"split": str(path)}, split="split")
        where = str(path)
    else:
        ds = datasets.load_dataset(cfg.hf_name, cfg.hf_config, split=spec)
        where = f"{cfg.hf_name}[{spec}]"
    for column in (cfg.text_column, cfg.label_column):
        if column not in ds.column_names:
            raise ValueError(f"{where}: no column {column!r} (columns: {', '.join(ds.column_names)})")
    feature = ds.features[cfg.label_column]
    names = getattr(feature, "names", None)  # a ClassLabel column stores ints; show its names
    for i, row in enumerate(ds, start=1):
        label = row[cfg.label_column]
        if names is not None and isinstance(label, int) and 0 <= label < len(names):
            label = names[label]
        try:
            yield _row(row[cfg.text_column], label, f"{where}: row {i}", cfg)
        except BadRow as e:
            yield e


def iter_split(spec: str, cfg: DataConfig, bad: list[int] | None = None) -> Iterator[RawExample]:
    """The usable rows of one split, streamed; bad rows raise (naming file and row) unless
    ``cfg.skip_bad_rows``, when they are counted in ``bad[0]``. Raises ``ValueError`` when the file cannot be
    decoded or has no usable row."""
    if cfg.format == "hf":
        rows = _read_hf(spec, cfg)
    else:
        path = resolve_path(spec)
        if cfg.format in ("csv", "tsv"):
            rows = _read_delimited(path, cfg, "," if cfg.format == "csv" else "\t")
        else:
            rows = _read_lines(path, cfg)
    bad = [0] if bad is None else bad
    usable = 0
    try:
        for row in rows:
            if isinstance(row, BadRow):
                if not cfg.skip_bad_rows:
                    raise row
                bad[0] += 1
            else:
                usable += 1
                yield row
    except UnicodeDecodeError as e:
        raise ValueError(f"{spec}: cannot decode as {cfg.encoding} ({e.reason}); set data.encoding") from None
    if not usable:
        raise ValueError(f"{spec}: no usable rows")


def read_split(spec: str, cfg: DataConfig) -> SplitData:
    """Read one split (:func:`iter_split`) into memory."""
    bad = [0]
    examples = list(iter_split(spec, cfg, bad))
    return SplitData(examples, bad[0])


def label_set(train: Iterable[str], cfg: DataConfig) -> list[str]:
    """The label order used by the model: ``cfg.labels``, else the sorted labels ``train`` (the training
    documents' label names; numerically when they are all integers)."""
    if cfg.labels is not None:
        if len(set(cfg.labels)) != len(cfg.labels):
            raise ValueError("data.labels has duplicates")
        return list(cfg.labels)
    names = set(train)
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


LABELS_FILE = "labels.json"


def save_labels(run_dir: Path, labels: list[str]) -> Path:
    """Write the label order of a run to ``run_dir/labels.json`` (a JSON list); returns the file."""
    path = Path(run_dir) / LABELS_FILE
    atomic_write_files({path: json.dumps(labels).encode("utf-8")})
    return path


def load_labels(run_dir: str | Path) -> list[str]:
    """The label order saved in ``run_dir/labels.json``. Raises ``FileNotFoundError`` ("FILE: no label set in
    the run directory") when the file is missing and ``ValueError`` when it is not a JSON list of strings."""
    path = Path(run_dir) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no label set in the run directory")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from e
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"{path}: expected a JSON list of label names")
    return labels


def check_labels(split: SplitData, labels: list[str], cfg: DataConfig) -> SplitData:
    """Drop (or report) rows whose label is not in ``labels``."""
    known = set(labels)
    kept = []
    for ex in split.examples:
        if ex.label in known:
            kept.append(ex)
        elif cfg.skip_bad_rows:
            split.num_bad += 1
        else:
            raise BadRow(f"{ex.source}: unknown label {ex.label!r} (labels: {', '.join(labels)})")
    split.examples = kept
    return split


def hold_out(examples: list[RawExample], fraction: float, seed: int) -> tuple[list[RawExample], list[RawExample]]:
    """Seeded split of ``examples`` into (train, valid); the files may be sorted by label, so shuffle first."""
    order = np.random.default_rng(seed).permutation(len(examples))
    n_valid = int(round(len(examples) * fraction))
    return [examples[i] for i in order[n_valid:]], [examples[i] for i in order[:n_valid]]
