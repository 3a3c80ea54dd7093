"""``seq2seq-attn attention-demo``: every score function on the same query and keys, printed and plotted."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attention-demo", help="show each score function's weights on one query (prints, plots PNG)")
    p.add_argument("--out", type=Path, default=Path("runs/attention_demo.png"), help="PNG to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalizer", default="softmax",
                   help="a normalizer of the core's table (softmax, sigmoid, hard, hard_sigmoid, tanh, count, ...)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..attention import check_normalizer_name
    from ..attention.demo import run_demo

    check_normalizer_name(args.normalizer, "--normalizer")  # ValueError naming the accepted names
    results = run_demo(args.out, seed=args.seed, normalizer=args.normalizer)
    width = max(len(n) for n in results)
    for name, weights in results.items():
        row = " ".join(f"{w:.3f}" for w in weights.tolist())
        print(f"{name:<{width}}  {row}")
    print(f"wrote {args.out}")
    return 0
