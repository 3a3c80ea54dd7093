"""``seq2seq-attn test RUN_DIR --src F --ref F [--beam K]``: translate a test set and print sacrebleu BLEU,
chrF and TER, each with its signature."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from .translate import add_decoding_args

    p = sub.add_parser("test", help="translate a test set and score it (BLEU, chrF, TER with signatures)")
    add_decoding_args(p)
    p.add_argument("--src", required=True, help="source sentences, one per line (plain or .gz; "
                   "shared:PATH reads from the shared data folder)")
    p.add_argument("--ref", required=True, help="reference translations, one per line")
    p.add_argument("--output", type=Path, default=None, help="write the detokenized translations here")
    p.add_argument("--attention-npz", type=Path, default=None, metavar="FILE",
                   help="dump every attention matrix of each translation (all layers and heads) to FILE.npz")
    p.add_argument("--attention-heads", type=Path, default=None, metavar="DIR",
                   help="write per-head cross-attention heatmaps (last decoder layer, and their mean) into DIR")
    p.add_argument("--alignments", type=Path, default=None, metavar="FILE",
                   help="write one Pharaoh word alignment per sentence (i-j: source word i, output word j) to FILE")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..translation.lifecycle import evaluate, load_run
    from .translate import alignment_source, decoding_overrides

    if args.beam is not None and args.beam < 1:
        raise ValueError(f"--beam must be >= 1, got {args.beam}")
    run = load_run(args.run_dir, args.device, args.which, args.alpha, decoding_overrides(args))
    evaluate(run, args.src, args.ref, args.beam, args.output, args.save_attention,
             attention_npz=args.attention_npz, attention_heads=args.attention_heads, prefix=args.prefix,
             alignments_out=args.alignments, align=alignment_source(args))
    return 0
