"""``seq2seq-attn`` command line. Each module in :mod:`seq2seq_attn.commands` adds one subcommand.

A command module defines ``register(subparsers)``, which adds its parser and sets ``func`` (called with the
parsed arguments; its return value is the exit code). Errors that users cause (bad config, missing file)
print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-attn",
        description="Attention models for translation, text classification and vision.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _command(args: argparse.Namespace) -> str:
    """The subcommand as typed, e.g. ``classify predict``."""
    words = [args.command]
    for attr in ("classify_command", "vision_command", "caption_command"):
        if getattr(args, attr, None):
            words.append(getattr(args, attr))
    return " ".join(words)


def _one_line(e: BaseException) -> str:
    """The exception's message on one line (multi-line messages joined with "; ")."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return "; ".join(lines) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ConfigError, OSError, ValueError) as e:
        # Errors about the user's input or its files (missing, unreadable, disk full): one line, no traceback.
        print(f"seq2seq-attn {_command(args)}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
