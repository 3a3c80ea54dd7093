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
                        "vision: image files or folders of images (PNG, JPEG, ...)")
    p.add_argument("--out", type=Path, required=True, help="the HTML page to write")
    p.add_argument("--limit", type=int, default=None, help="the first N inputs only")
    p.add_argument("--beam", type=int, default=None, help="translation: beam size (default: the config's)")
    p.add_argument("--n-best", type=int, default=5, help="translation: hypotheses listed per sentence")
    p.add_argument("--ig-steps", type=int, default=20, help="classification: Integrated Gradients steps")
    add_weights_arg(p)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _text_inputs(args: argparse.Namespace) -> list[str]:
    from ..explore import read_lines

    if len(args.input) != 1:
        raise ValueError("--input: give one text file (one sentence or document a line)")
    return read_lines(args.input[0])[: args.limit]


def run(args: argparse.Namespace) -> int:
    from ..explore import run_kind, write_page
    from ..training.runtime import resolve_device

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    kind = run_kind(args.run_dir)
    if kind == "translation":
        from ..explore.translation import translation_data
        from ..translation.run import load_run

        sources = _text_inputs(args)
        loaded = load_run(args.run_dir, args.device, args.which)
        data = translation_data(loaded, sources, args.beam, args.n_best)
    elif kind == "classification":
        from ..classification.predict import Predictor
        from ..explore.classification import classification_data

        texts = _text_inputs(args)
        data = classification_data(Predictor(args.run_dir, resolve_device(args.device), args.which), texts,
                                   args.ig_steps)
    else:
        from ..explore.vision import image_paths, load_vision_run, vision_data

        paths = image_paths(args.input)[: args.limit]
        data = vision_data(load_vision_run(args.run_dir, resolve_device(args.device), args.which), paths)
    write_page(args.out, kind, data, f"{kind}: {args.run_dir}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0
