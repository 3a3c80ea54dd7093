"""``seq2seq-attn translate RUN_DIR``: stdin -> stdout, one translation per line; batched when piped, line by
line when typed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_decoding_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``translate`` and ``test``: run dir, beam, heatmaps, weights, device."""
    from ..training.cli import add_weights_arg

    p.add_argument("run_dir", type=Path, help="a run dir written by `seq2seq-attn train`")
    p.add_argument("--beam", type=int, default=None, help="beam size (default: the config's decoding.beam_size)")
    p.add_argument("--save-attention", type=Path, default=None, metavar="DIR",
                   help="write one attention heatmap PNG per sentence into DIR")
    add_weights_arg(p)
    p.add_argument("--alpha", type=float, default=None,
                   help="length penalty of the beam search (default: the config's decoding.alpha)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate stdin to stdout with a trained run dir")
    add_decoding_args(p)
    p.add_argument("--n-best", type=int, default=1, help="print N hypotheses per line as `i ||| text ||| score`")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..translation.lifecycle import load_run, translate_stream

    beam = args.beam
    if beam is not None and beam < 1:
        raise ValueError(f"--beam must be >= 1, got {args.beam}")
    if args.n_best < 1 or args.n_best > (beam or args.n_best):
        raise ValueError(f"--n-best must be between 1 and the beam size, got {args.n_best}")
    run = load_run(args.run_dir, args.device, args.which, args.alpha)
    if beam is None and args.n_best > run.cfg.decoding.beam_size:
        beam = args.n_best
    translate_stream(run, sys.stdin.fileno(), sys.stdout, beam, args.n_best, args.save_attention)
    return 0
