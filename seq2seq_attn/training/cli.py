"""Command-line helpers so that each task's ``train`` subcommand is one call::

def register(sub):
    add_train_command(sub, "train-foo", "train a foo model", "YAML config", "foo.lifecycle")

where the task's lifecycle module (``foo.lifecycle``) has ``train(config, overrides, resume=, overwrite=,
device=)``, which loads the config with ``training.lifecycle.load_task_config`` and trains with
:func:`run_training`.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import signal
import sys
from pathlib import Path
from typing import Any

from ..config import parse_override
from .config import TrainingConfig
from .trainer import NonFiniteLossError, Trainer


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """``--resume``, ``--overwrite``, ``--device`` and repeatable ``--set KEY=VALUE``."""
    g = parser.add_argument_group("training")
    g.add_argument("--resume", action="store_true", help="continue training.run_dir from its latest checkpoint")
    g.add_argument("--overwrite", action="store_true", help="clear the trainer's files in training.run_dir, start over")
    g.add_argument("--device", default=None, help="override training.device: auto, cpu, cuda, cuda:N or mps")
    add_set_arg(g)


def add_train_command(sub: argparse._SubParsersAction, name: str, help: str, config_help: str,
                      lifecycle: str) -> argparse.ArgumentParser:
    """Register ``NAME CONFIG`` (+ :func:`add_training_args`) on ``sub``; it runs ``train`` of the lifecycle
    module named ``lifecycle`` (e.g. ``"vision.lifecycle"``, imported only when the command runs)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("config", type=Path, help=config_help)
    add_training_args(p)
    p.set_defaults(func=functools.partial(train_from_args, lifecycle))
    return p


def train_from_args(lifecycle: str, args: argparse.Namespace) -> int:
    """``train(args.config, --set overrides, resume=, overwrite=, device=)`` of the module ``lifecycle``; returns
    its exit code."""
    train = importlib.import_module(lifecycle).train
    return train(args.config, overrides_from_args(args), resume=args.resume, overwrite=args.overwrite,
                 device=args.device)


def add_set_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Repeatable ``--set KEY=VALUE`` (read by :func:`overrides_from_args`, applied by
    ``config.apply_overrides``)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (YAML syntax), e.g. --set training.lr=3e-4; repeatable",
    )


def add_weights_arg(parser: argparse.ArgumentParser) -> None:
    """``--which``: the weights an inference command loads (see ``checkpoint.resolve_weights``)."""
    parser.add_argument("--which", default="best", metavar="best|latest|FILE",
                        help="weights to load: the run's best or latest, or a .safetensors file of the same "
                        "model (e.g. from scripts/average_checkpoints.py)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` values as the dotted-key dict that ``load_config(..., overrides=...)`` takes."""
    return dict(parse_override(text) for text in getattr(args, "overrides", None) or [])


def run_training(task: Any, cfg_training: TrainingConfig, full_config: Any = None, **options: Any) -> int:
    """Train and return an exit code: 0 when done, 128 + signal number when stopped by SIGINT/SIGTERM
    (after writing a checkpoint), 1 after too many non-finite losses. Bad input raises ``ValueError``.

    ``options`` are the :class:`Trainer`'s keyword options (``resume``, ``overwrite``, ``device``)."""
    trainer = Trainer(task, cfg_training, full_config, **options)
    try:
        summary = trainer.fit()
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary["stopped"] == "signal":
        return 128 + int(getattr(signal, summary["signal"] or "SIGINT", signal.SIGINT))
    best = summary["best_value"]
    if summary["rank"] == 0:
        print(
            f"trained {summary['steps']} steps ({summary['stopped']}) in {summary['wall_seconds']:.1f}s; "
            f"best {summary['best_metric']} {best if best is not None else 'n/a'}; run dir {summary['run_dir']}"
        )
    return 0
