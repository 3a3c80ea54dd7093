"""Checkpoints: weights as safetensors, trainer state as a weights-only torch file, both written atomically.

Layout of a run dir::

    checkpoints/step-000123.safetensors   model weights (shared tensors stored once, aliases in the metadata)
    checkpoints/step-000123.state.pt      optimizer, schedule, scaler, counters, RNG states, data position
    latest.json                           names the newest *complete* pair; replaced last, atomically
    best.safetensors + best.json          weights at the best evaluation and its metric

Every file is written to a temporary name, fsynced and renamed, so a crash mid-write never leaves a
truncated file under a name that ``latest.json`` points at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .runtime import total_norm

CKPT_DIR = "checkpoints"
LATEST = "latest.json"
BEST_WEIGHTS = "best.safetensors"
BEST_INFO = "best.json"
_STEP_RE = re.compile(r"^step-(\d+)\.safetensors$")


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, non-finite, or does not fit the model. The message names the file."""


class WriteError(OSError):
    """A file could not be written (disk full, no permission); the file it would replace is unchanged.
    The message names the file and the reason."""


# ---------------------------------------------------------------------------------------------- atomic I/O


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)$")


def temp_path(path: str | Path) -> Path:
    """The temporary name :func:`atomic_write` writes ``path`` under (``.NAME.tmp-PID`` beside it)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(fh)`` into a temp file, fsync it, then rename it into place.

    Raises :class:`WriteError` (an ``OSError``) naming the file when the disk is full or the folder not
    writable; the temp file is removed and an existing ``path`` is left as it was."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        reason = e.strerror or str(e) or type(e).__name__
        raise WriteError(f"could not write {path} ({reason}); the file it would replace is unchanged") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class StagedOutputs:
    """A command's output files and folders, all or none: each is written under a temporary name beside its
    target (``.NAME.tmp-PID``), and only when every one is complete are they put in place.

    ``with StagedOutputs() as stage:`` write to ``stage.file(path)`` / into ``stage.folder(path)``; leaving the
    block normally moves them into place (a folder's files join the target folder, which may already exist),
    an exception removes them. An ``OSError`` while staging becomes :class:`WriteError` naming the target.
    """

    def __init__(self) -> None:
        self.items: list[tuple[Path, Path, bool]] = []  # (temp, target, is_folder)

    def file(self, path: str | Path) -> Path:
        """The temporary path to write ``path``'s content to."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.items.append((temp_path(path), path, False))
        return self.items[-1][0]

    def folder(self, path: str | Path) -> Path:
        """A temporary folder (created) whose files go into folder ``path``."""
        path = Path(path)
        tmp = temp_path(path)
        tmp.mkdir(parents=True, exist_ok=True)
        self.items.append((tmp, path, True))
        return tmp

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if error is not None:
            self.discard()
            if isinstance(error, OSError) and not isinstance(error, WriteError):
                target = self.items[-1][1] if self.items else "output"
                raise WriteError(f"could not write {target} ({error.strerror or error}); no output was "
                                 "written") from error
            return
        for tmp, path, is_folder in self.items:
            if is_folder:
                path.mkdir(parents=True, exist_ok=True)
                for p in sorted(tmp.iterdir()):
                    os.replace(p, path / p.name)
                tmp.rmdir()
            else:
                os.replace(tmp, path)

    def discard(self) -> None:
        """Remove everything staged."""
        for tmp, _, is_folder in self.items:
            if is_folder:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def atomic_write_files(files: Mapping[str | Path, bytes]) -> None:
    """Write several files all or none (see :class:`StagedOutputs`; each temp file is fsynced). Raises
    :class:`WriteError` naming the file that failed; then no output has been replaced."""
    with StagedOutputs() as stage:
        for path, data in files.items():
            with open(stage.file(path), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists but belongs to someone else
        return True
    return True


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Remove the temp files that :func:`atomic_write` left in ``folder`` when its process was killed
    mid-write (those of processes still running are kept); returns the files removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _TMP_RE.match(p.name)
            if m and p.is_file() and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e.msg} at line {e.lineno})") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# ------------------------------------------------------------------------------------------------- weights


def _dedupe(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store tensors that share memory (tied embeddings) once: ``alias -> kept name``."""
    kept: dict[tuple, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, t in state.items():
        key = None
        if t.numel():
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if key is not None and key in kept:
            aliases[name] = kept[key]
            continue
        if key is not None:
            kept[key] = name
        tensors[name] = t.detach().to("cpu").contiguous()
    return tensors, aliases


def weights_to_bytes(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    tensors, aliases = _dedupe(state)
    meta = {"format": "pt", "aliases": json.dumps(aliases), **(metadata or {})}
    return safetensors_bytes(tensors, metadata=meta)


def save_weights(
    state: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str] | None = None
) -> None:
    atomic_write_bytes(path, weights_to_bytes(state, metadata))


def read_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a weights file (aliases restored). Missing, truncated or corrupt files name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        aliases = json.loads(meta.get("aliases", "{}"))
    except Exception as e:  # SafetensorError, OSError, JSONDecodeError
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_first_line(e)})") from e
    for alias, name in aliases.items():
        state[alias] = state[name]
    return state


def _names(items: list[str], most: int = 6) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" (+{len(items) - most} more)" if len(items) > most else "")


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``model.load_state_dict`` with a one-line error naming every mismatched tensor and the file."""
    own = model.state_dict()
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    if mismatched:
        problems.append(f"shape mismatch: {_names(mismatched)}")
    if missing:
        problems.append(f"missing in checkpoint: {_names(missing)}")
    if unexpected:
        problems.append(f"not in model: {_names(unexpected)}")
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not fit the model ({'; '.join(problems)})")
    check_finite(state, path)
    model.load_state_dict(state)


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Raise :class:`CheckpointError` naming the file and tensors when a floating-point tensor holds inf/NaN."""
    tensors = [t for t in state.values() if t.is_floating_point()]
    if not tensors or torch.isfinite(total_norm(tensors)):
        return
    bad = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    raise CheckpointError(f"{path}: non-finite weights (inf or NaN) in {_names(bad)}; the checkpoint cannot be "
                          "used (pick another with --which, or train again)")


# ------------------------------------------------------------------------------------------- trainer state


def save_state(state: dict, path: str | Path) -> None:
    atomic_write(path, lambda fh: torch.save(state, fh))


def read_state(path: str | Path) -> dict:
    """Load trainer state with ``weights_only=True``; a truncated or corrupt file is named in the error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trainer state not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(f"{path}: corrupt or truncated trainer state ({_first_line(e)})") from e
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path}: not a trainer state file")
    return state


# ---------------------------------------------------------------------------------------------- run dirs


def checkpoint_paths(run_dir: str | Path, step: int) -> tuple[Path, Path]:
    base = Path(run_dir) / CKPT_DIR / f"step-{step:06d}"
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".state.pt")


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path, Path]]:
    """Complete (weights, state) pairs in ``run_dir/checkpoints``, oldest first."""
    folder = Path(run_dir) / CKPT_DIR
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _STEP_RE.match(p.name)
            if m:
                step = int(m.group(1))
                weights, state = checkpoint_paths(run_dir, step)
                if state.is_file():
                    found.append((step, weights, state))
    return sorted(found)


def read_latest(run_dir: str | Path) -> dict | None:
    """``latest.json`` with absolute paths, or None when the run has no checkpoint yet."""
    run_dir = Path(run_dir)
    path = run_dir / LATEST
    if not path.is_file():
        return None
    info = read_json(path)
    if not isinstance(info, dict) or not {"step", "weights", "state"} <= set(info):
        raise CheckpointError(f"{path}: expected keys step, weights, state")
    return {**info, "weights": run_dir / info["weights"], "state": run_dir / info["state"]}


def write_checkpoint(
    run_dir: str | Path, weights: Mapping[str, torch.Tensor], state: dict, step: int, keep_last: int
) -> Path:
    """Write the pair for ``step``, then point ``latest.json`` at it, then prune old pairs."""
    run_dir = Path(run_dir)
    (run_dir / CKPT_DIR).mkdir(parents=True, exist_ok=True)
    w_path, s_path = checkpoint_paths(run_dir, step)
    try:
        save_weights(weights, w_path, {"step": str(step)})
        save_state(state, s_path)
        atomic_write_json(
            run_dir / LATEST,
            {"step": step, "weights": str(w_path.relative_to(run_dir)), "state": str(s_path.relative_to(run_dir))},
        )
    except WriteError as e:
        latest = read_latest(run_dir)
        if latest is None or latest["step"] != step:  # an unfinished pair: remove it
            w_path.unlink(missing_ok=True)
            s_path.unlink(missing_ok=True)
        kept = f"the last complete checkpoint (step {latest['step']}) is kept" if latest else "no checkpoint kept"
        raise WriteError(f"checkpoint of step {step} not saved: {e}; {kept}") from e
    prune_checkpoints(run_dir, keep_last, current=step)
    return w_path


def prune_checkpoints(run_dir: str | Path, keep_last: int, current: int) -> None:
    """Keep the ``keep_last`` newest pairs up to ``current``; pairs after it are stale (from a killed run)."""
    pairs = list_checkpoints(run_dir)
    stale = [p for p in pairs if p[0] > current]
    older = [p for p in pairs if p[0] <= current]
    for _, w, s in stale + older[:-keep_last]:
        w.unlink(missing_ok=True)
        s.unlink(missing_ok=True)


def write_best(run_dir: str | Path, weights: Mapping[str, torch.Tensor], info: dict) -> None:
    run_dir = Path(run_dir)
    save_weights(weights, run_dir / BEST_WEIGHTS, {"step": str(info.get("step", ""))})
    atomic_write_json(run_dir / BEST_INFO, info)


def resolve_weights(run_dir: str | Path, which: str = "best") -> Path:
    """The weights file for ``which``: "best" (falls back to "latest"), "latest", or the path of a weights
    file (e.g. averaged checkpoints); ``run_dir`` may also be a file."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if which not in ("best", "latest"):
        if Path(which).is_file():
            return Path(which)
        raise FileNotFoundError(f"weights {which!r}: neither 'best', 'latest' nor an existing weights file")
    if which == "best" and (run_dir / BEST_WEIGHTS).is_file():
        return run_dir / BEST_WEIGHTS
    latest = read_latest(run_dir)
    if latest is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint found (no {BEST_WEIGHTS} or {LATEST})")
    return latest["weights"]


def load_weights(
    model: nn.Module, run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> Path:
    """Load a run's best (or latest) weights into ``model`` for inference; returns the file used."""
    path = resolve_weights(run_dir, which)
    load_state_dict_checked(model, read_weights(path, device), path)
    return path


def init_weights(model: nn.Module, source: str | Path, device: str | torch.device = "cpu") -> Path:
    """Load the weights a new run starts from (``training.init_from``): a run dir's best weights (else its
    latest) or a ``.safetensors`` file; returns the file used. Raises ``FileNotFoundError`` naming the key when
    there are none, and :class:`CheckpointError` when they do not fit ``model``."""
    if not Path(source).exists():
        raise FileNotFoundError(f"training.init_from: {source}: no such run dir or weights file")
    try:
        return load_weights(model, source, "best", device)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"training.init_from: {err}") from None


def average_weights(paths: Iterable[str | Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors over several weight files (others from the last file)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    for path in paths:
        state = read_weights(path)
        if total and set(state) != set(total):
            raise CheckpointError(f"{path}: tensor names differ from {paths[0]}")
        for k, v in state.items():
            if k in total and v.shape != total[k].shape:
                raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, {paths[0]} has {tuple(total[k].shape)}")
            acc = v.to(torch.float64)
            total[k] = total[k] + acc if k in total else acc
        last = state
    return {k: (total[k] / len(paths)).to(v.dtype) if v.is_floating_point() else v for k, v in last.items()}
