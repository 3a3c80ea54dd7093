"""``seq2seq-attn train CONFIG``: train a translation model (data, subwords, model and Trainer from one YAML)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training import add_training_args

    p = sub.add_parser("train", help="train a translation model from a YAML config (configs/demo.yaml, ...)")
    p.add_argument("config", type=Path, help="YAML config with data, model, decoding and training sections")
    add_training_args(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..training import overrides_from_args
    from ..translation.lifecycle import train

    return train(args.config, overrides_from_args(args), resume=args.resume, overwrite=args.overwrite,
                 device=args.device)
