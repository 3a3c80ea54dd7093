"""``seq2seq-attn prepare CONFIG``: train the subword model(s) and encode the training corpus into the cache
(flat arrays on disk), so that ``train`` (every run, resume and rank on that corpus) starts at once.
``--task classify``: the same for a ``classify`` config (labels and encoded documents of its training file)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_set_arg

    p = sub.add_parser("prepare", help="encode a translation config's training corpus once (cached, flat arrays)")
    p.add_argument("config", type=Path, help="YAML config of a run (its data section is used)")
    p.add_argument("--task", choices=["translate", "classify"], default="translate",
                   help="the kind of config (default: translate)")
    add_set_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..training import overrides_from_args
    from ..training.lifecycle import load_task_config
    from ..translation.config import TranslationConfig
    from ..translation.data import filter_encoded
    from ..translation.prepare import prepare

    if args.task == "classify":
        return _classify(args)
    cfg = load_task_config(TranslationConfig, args.config, overrides_from_args(args))
    _, pairs = prepare(cfg)
    d = cfg.data
    report = filter_encoded(pairs.src.lengths, pairs.tgt.lengths, pairs.empty, d.max_len, d.max_ratio)[1]
    print(report.describe(f"train ({pairs.where})", d.max_len, d.max_ratio))
    print(f"cached in {pairs.folder}")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from ..classification.config import ClassificationConfig
    from ..classification.task import ClassificationData
    from ..training import overrides_from_args
    from ..training.lifecycle import load_task_config

    cfg = load_task_config(ClassificationConfig, args.config, overrides_from_args(args))
    data = ClassificationData(cfg)
    print(f"train {len(data.train)} documents, valid {len(data.valid) if data.valid else 0}, {len(data.labels)} "
          f"labels, vocabulary {len(data.vocab)}, {data.num_bad} bad rows skipped")
    print(f"cached in {data.train.docs.encoded.folder}")
    return 0
