"""``seq2seq-attn prepare CONFIG``: train the subword model(s) and encode the training corpus into the cache
(flat memory-mapped arrays), so that ``train`` (every run, resume and rank on that corpus) starts at once."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_set_arg

    p = sub.add_parser("prepare", help="encode a translation config's training corpus once (cached, memory-mapped)")
    p.add_argument("config", type=Path, help="YAML config of a translation run (its data section is used)")
    add_set_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..training import overrides_from_args
    from ..training.lifecycle import load_task_config
    from ..translation.config import TranslationConfig
    from ..translation.data import filter_encoded
    from ..translation.prepare import prepare

    cfg = load_task_config(TranslationConfig, args.config, overrides_from_args(args))
    _, pairs = prepare(cfg)
    d = cfg.data
    report = filter_encoded(pairs.src.lengths, pairs.tgt.lengths, pairs.empty, d.max_len, d.max_ratio)[1]
    print(report.describe(f"train ({pairs.where})", d.max_len, d.max_ratio))
    print(f"cached in {pairs.folder}")
    return 0
