"""``seq2seq-attn caption {train,test,predict}``: image captioning with visual attention (Show, Attend and Tell)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_train_command, add_weights_arg

    p = sub.add_parser("caption", help="image captioning with soft/hard visual attention (train/test/predict)")
    cmds = p.add_subparsers(dest="caption_command", metavar="ACTION", required=True)

    add_train_command(cmds, "train", "train a captioner from a YAML config (configs/caption_*.yaml)",
                      "YAML config (see configs/caption_*.yaml)", "seq2seq_attn.captioning.lifecycle")

    t = cmds.add_parser("test", help="BLEU, chrF, word accuracy and attention correctness of a run on a split")
    t.add_argument("run_dir", type=Path)
    t.add_argument("--split", default=None, help="split of the run's data (default: the config's test_split)")
    t.add_argument("--beam", type=int, default=None, help="beam size (default: decoding.beam_size)")
    t.add_argument("--limit", type=int, default=None, help="only the first N images")
    add_weights_arg(t)
    t.add_argument("--device", default="auto")
    t.set_defaults(func=handle_test)

    r = cmds.add_parser("predict", help="caption images; n-best and a PNG strip of attended words per image")
    r.add_argument("run_dir", type=Path)
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", help="image files (resized to the run's image size)")
    src.add_argument("--split", help="caption the images of this split of the run's data")
    r.add_argument("--limit", type=int, default=8, help="with --split: the first N images (default 8)")
    r.add_argument("--out", type=Path, required=True, help="folder for captions.tsv, nbest.txt, attention/*.png")
    r.add_argument("--beam", type=int, default=None, help="beam size (default: decoding.beam_size)")
    r.add_argument("--n-best", type=int, default=1, help="hypotheses per image in nbest.txt")
    r.add_argument("--no-strips", action="store_true", help="do not draw the attention strips")
    add_weights_arg(r)
    r.add_argument("--device", default="auto")
    r.set_defaults(func=handle_predict)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def handle_test(args: argparse.Namespace) -> int:
    from ..captioning.lifecycle import evaluate, load_run

    _positive("--beam", args.beam)
    _positive("--limit", args.limit)
    evaluate(load_run(args.run_dir, args.device, args.which), args.split, args.beam, args.limit)
    return 0


def handle_predict(args: argparse.Namespace) -> int:
    from ..captioning.lifecycle import load_run, predict, read_image_files
    from ..captioning.task import load_splits

    for name in ("beam", "n_best", "limit"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    run = load_run(args.run_dir, args.device, args.which)
    if args.images:
        images, names = read_image_files(args.images, run.inputs), list(args.images)
    else:
        data = load_splits(run.cfg, [args.split])[0]
        images = data.images[:args.limit]
        names = list(data.names[:args.limit])
    predict(run, images, names, args.out, args.beam, args.n_best, not args.no_strips)
    return 0
