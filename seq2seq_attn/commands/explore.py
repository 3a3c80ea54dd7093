"""``seq2seq-attn explore RUN_DIR --input ... --out page.html``: every attention of any run on one page."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_weights_arg

    p = sub.add_parser("explore", help="one self-contained HTML page with every attention of a run on your inputs")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="translation/classification: a text file, one sentence or document a line; "
                        "vision, captioning: image files or folders of images (PNG, JPEG, ...)")
    p.add_argument("--out", type=Path, required=True, help="the HTML page to write")
    p.add_argument("--limit", type=int, default=None, help="the first N inputs only")
    p.add_argument("--beam", type=int, default=None, help="translation, captioning: beam size (default: the config's)")
    p.add_argument("--n-best", type=int, default=5, help="translation, captioning: hypotheses listed per input")
    p.add_argument("--ig-steps", type=int, default=20, help="classification: Integrated Gradients steps")
    add_weights_arg(p)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..explore import explore

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    path = explore(args.run_dir, args.input, args.out, device=args.device, which=args.which, limit=args.limit,
                   beam=args.beam, n_best=args.n_best, ig_steps=args.ig_steps)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
