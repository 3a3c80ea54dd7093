"""What every task's lifecycle module shares: loading a task config (with ``training.cpu_threads`` applied)
and a trained run for inference.

Each task has one lifecycle module (``translation/lifecycle.py``, ``classification/lifecycle.py``,
``vision/lifecycle.py``) with the same four verbs: ``train(config, ...)`` -> exit code, ``load_run(run_dir,
...)`` -> a :class:`LoadedRun` subclass, ``evaluate(...)`` and the task's prediction (``translate``,
``explain``, ``predict``). The command modules in ``seq2seq_attn/commands`` only parse arguments and call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from ..config import load_config
from .rundir import CONFIG_FILE

T = TypeVar("T")


def load_task_config(cls: type[T], path: str | Path, overrides: dict | None = None) -> T:
    """``load_config(cls, path, overrides)`` and then ``training.cpu_threads`` applied to this process.

    The one place a command sets the thread count (before data are decoded or a model is built), whether it
    trains or loads a run; the Trainer applies it again for library callers. ``cls`` must have a
    ``training: TrainingConfig`` field.
    """
    cfg = load_config(cls, path, overrides)
    cfg.training.apply_cpu_threads()  # type: ignore[attr-defined]
    return cfg


def run_config_path(run_dir: str | Path) -> Path:
    """``run_dir/config.yaml``; ``FileNotFoundError`` "RUN_DIR: not a run dir (no config.yaml)" without it."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run dir (no config.yaml)")
    return path


def run_kind(run_dir: str | Path) -> str:
    """The task of a run directory, from its ``config.yaml``: ``translation``, ``classification``, ``vision`` or
    ``captioning`` (what ``explore``, ``export`` and ``serve`` dispatch on).

    Raises FileNotFoundError without a config, ValueError when it matches no task."""
    import yaml

    path = run_config_path(run_dir)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    if cfg.get("task") == "captioning":
        return "captioning"
    if "decoding" in cfg or isinstance(data.get("train"), dict):
        return "translation"
    if "type" in model:
        return "classification"
    if "attention" in model or "source" in data:
        return "vision"
    raise ValueError(f"{path}: cannot tell the task of this run (no decoding, model.type or model.attention key)")


@dataclass
class LoadedRun:
    """A trained run directory ready for inference; each task's ``load_run`` returns a subclass that adds its
    vocabularies or labels and its prediction methods.

    ``cfg``: the run's task config (as saved in ``run_dir/config.yaml``); ``model``: in eval mode on
    ``device``; ``weights``: the safetensors file loaded into it.
    """

    run_dir: Path
    cfg: Any = field(repr=False)
    model: nn.Module = field(repr=False)
    device: torch.device
    weights: Path


def load_weights_for_inference(model: nn.Module, run_dir: str | Path, which: str, device: str | torch.device
                               ) -> tuple[nn.Module, torch.device, Path]:
    """Load the ``which`` weights ("best", "latest" or a ``.safetensors`` file) of ``run_dir`` into ``model``,
    move it to ``device`` ("auto", "cpu", "cuda", ... or a ``torch.device``) and switch it to eval mode.

    Returns (model, resolved device, weights file). Raises ``CheckpointError``/``FileNotFoundError`` from
    :func:`~seq2seq_attn.training.checkpoint.load_weights`.
    """
    from .checkpoint import load_weights
    from .runtime import resolve_device

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    weights = load_weights(model, run_dir, which, device=dev)
    return model.to(dev).eval(), dev, weights
