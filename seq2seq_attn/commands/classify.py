"""``seq2seq-attn classify {train,test,predict,faithfulness}``: attention-weighted document classification."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_train_command, add_weights_arg

    p = sub.add_parser("classify", help="document classification with attention explanations (train/test/predict)")
    cmds = p.add_subparsers(dest="classify_command", metavar="ACTION", required=True)

    add_train_command(cmds, "train", "train a classifier from a YAML config (configs/cls_*.yaml)",
                      "YAML config (see configs/cls_*.yaml)", "seq2seq_attn.classification.lifecycle")

    for name in ("test", "evaluate"):
        e = cmds.add_parser(name, help="accuracy, macro-F1, per-class figures and confusion matrix of a run")
        e.add_argument("run_dir", type=Path)
        e.add_argument("--data", default=None,
                       help="labelled file in the run's data format (default: the config's data.test)")
        e.add_argument("--out", type=Path, default=None, help="folder for the report files (default: RUN_DIR)")
        add_weights_arg(e)
        e.add_argument("--device", default="auto")
        e.set_defaults(func=handle_test)

    r = cmds.add_parser("predict", help="label documents (one per line, from a file or stdin)")
    r.add_argument("run_dir", type=Path)
    r.add_argument("--input", default="-", help="text file with one document per line; '-' reads stdin")
    r.add_argument("--explain", type=Path, default=None, metavar="PREFIX",
                   help="write PREFIX.jsonl (attention weight of every token) and PREFIX.html (highlighted)")
    add_weights_arg(r)
    r.add_argument("--device", default="auto")
    r.set_defaults(func=handle_predict)

    f = cmds.add_parser("faithfulness", help="is the attention an explanation? ERASER comprehensiveness and "
                        "sufficiency (AOPC) of attention, Integrated Gradients, occlusion and random rankings")
    f.add_argument("run_dir", type=Path)
    f.add_argument("--split", default=None, help="labelled file in the run's data format (default: data.test)")
    f.add_argument("--limit", type=int, default=None,
                   help="a random subset of N documents (seeded with --seed) instead of the whole split")
    f.add_argument("--ig-steps", type=int, default=20, help="Integrated Gradients integration points")
    f.add_argument("--seed", type=int, default=0, help="seed of the subset and of the random ranking")
    f.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the run's training.cpu_threads); its many small batches "
                        "run fastest on one thread when the machine is busy")
    f.add_argument("--out", type=Path, default=None, help="folder for faithfulness.{md,csv,png} (default: RUN_DIR)")
    add_weights_arg(f)
    f.add_argument("--device", default="auto")
    f.set_defaults(func=handle_faithfulness)


def handle_test(args: argparse.Namespace) -> int:
    from ..classification.lifecycle import evaluate, load_run

    evaluate(load_run(args.run_dir, args.device, args.which), args.data, args.out or args.run_dir)
    return 0


def handle_predict(args: argparse.Namespace) -> int:
    from ..classification.lifecycle import load_run, predict, read_documents

    texts = read_documents(args.input)
    predict(load_run(args.run_dir, args.device, args.which), texts, args.explain)
    return 0


def handle_faithfulness(args: argparse.Namespace) -> int:
    from ..classification.faithfulness import run_faithfulness
    from ..classification.lifecycle import load_run

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.ig_steps < 1:
        raise ValueError(f"--ig-steps must be >= 1, got {args.ig_steps}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    run = load_run(args.run_dir, args.device, args.which)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    run_faithfulness(run, args.split, args.out or args.run_dir, args.limit, args.ig_steps, args.seed)
    return 0
