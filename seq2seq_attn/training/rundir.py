"""The run directory: refuse to mix two runs in one folder, save the config, clear it on ``--overwrite``."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..config import to_dict
from .checkpoint import BEST_INFO, BEST_WEIGHTS, CKPT_DIR, LATEST, atomic_write_bytes

CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tensorboard"
#: Everything the trainer writes; ``--overwrite`` removes exactly these and nothing else.
RUN_FILES = (CONFIG_FILE, LOG_FILE, METRICS_FILE, LATEST, BEST_WEIGHTS, BEST_INFO, CKPT_DIR, TB_DIR)
#: Settings that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = frozenset(
    f"training.{k}"
    for k in (
        "max_epochs",
        "max_steps",
        "max_minutes",
        "device",
        "num_workers",
        "cpu_threads",
        "log_every",
        "tensorboard",
        "progress",
        "keep_last",
        "compile",
        "patience",
        "run_dir",
    )
)
#: Sections whose changes are refused on resume (other sections, e.g. decoding, only give a warning).
GUARDED_SECTIONS = ("model", "training")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def _plain(config: Any) -> dict:
    """A config (dataclass or dict) as YAML-round-tripped plain data, so tuples and lists compare equal."""
    return yaml.safe_load(yaml.safe_dump(to_dict(config), sort_keys=False)) or {}


def holds_run(run_dir: Path) -> list[str]:
    """The trainer's files present in ``run_dir`` (empty when it holds no run)."""
    return [name for name in RUN_FILES if (run_dir / name).exists()] if run_dir.is_dir() else []


def config_changes(old: dict, new: dict) -> list[tuple[str, str]]:
    """``(dotted key, "key (old -> new)")`` for each value that differs, ignoring the resumable settings."""
    a, b = _flatten(old), _flatten(new)
    return [
        (k, f"{k} ({a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r})")
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES
    ]


def _is_guarded(key: str, guarded: Sequence[str]) -> bool:
    return key.split(".", 1)[0] in GUARDED_SECTIONS or any(key == g or key.startswith(g + ".") for g in guarded)


def prepare_run_dir(
    run_dir: str | Path,
    config: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    write: bool = True,
    guarded: Sequence[str] = (),
) -> Path:
    """Check that ``run_dir`` may be used, then (``write``) create it and save ``config.yaml``.

    ``--resume`` refuses a config whose ``model`` or ``training`` sections changed, or any of the task's
    ``guarded`` keys (dotted keys or sections that change the meaning of the saved weights, e.g.
    ``data.vocab_size``); other changes only give a warning.

    All checks come before any change on disk, and each failure is a one-line ``ValueError``. Under
    distributed training every rank checks and only rank 0 writes (``write=False`` elsewhere).
    """
    run_dir = Path(run_dir)
    if isinstance(config, bool):
        raise TypeError("prepare_run_dir(run_dir, config, resume, overwrite): config must be a dict or dataclass")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir}: run dir exists and is not a directory")
    present = holds_run(run_dir)
    new_config = _plain(config) if config is not None else None
    if present and not (resume or overwrite):
        raise ValueError(
            f"{run_dir} already holds a run ({', '.join(present)}); pass --resume to continue it "
            "or --overwrite to start over"
        )
    if resume and new_config is not None and (run_dir / CONFIG_FILE).is_file():
        try:
            old_config = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{run_dir / CONFIG_FILE}: invalid YAML ({e})") from e
        changes = config_changes(old_config, new_config)
        refused = [text for key, text in changes if _is_guarded(key, guarded)]
        if refused:
            shown = "; ".join(refused[:5]) + (f" (+{len(refused) - 5} more)" if len(refused) > 5 else "")
            raise ValueError(
                f"{run_dir}: cannot resume with a different config: {shown}; use a new run dir or --overwrite"
            )
        if changes and write:
            shown = "; ".join(text for _, text in changes)
            warnings.warn(f"{run_dir}: resuming with changed settings: {shown}", stacklevel=2)
    if not write:
        return run_dir
    if overwrite:
        for name in present:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    if new_config is not None:
        atomic_write_bytes(run_dir / CONFIG_FILE, yaml.safe_dump(new_config, sort_keys=False).encode())
    return run_dir
