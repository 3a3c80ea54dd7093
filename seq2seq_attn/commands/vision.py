"""``seq2seq-attn vision``: ``train CONFIG``, ``test RUN_DIR``, ``compare [CONFIG]`` and ``list`` (the attention
modules)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_set_arg, add_train_command, add_weights_arg

    p = sub.add_parser("vision", help="image classification with attention modules: train, test, compare, list")
    vsub = p.add_subparsers(dest="vision_command", metavar="ACTION")
    vsub.required = True

    add_train_command(vsub, "train", "train a ResNet (with an attention module) from a YAML config",
                      "YAML config (see configs/vision_*.yaml)", "vision.lifecycle")

    t = vsub.add_parser("test", help="score a run on its test split: loss, accuracy, error")
    t.add_argument("run_dir", type=Path)
    t.add_argument("--out", type=Path, default=None,
                   help="JSON file of the scores (default: RUN_DIR/test_metrics.json)")
    add_weights_arg(t)
    t.add_argument("--device", default="auto")
    add_set_arg(t)  # evaluation settings, e.g. --set model.recurrent.eval_samples=10
    t.set_defaults(func=handle_test)

    c = vsub.add_parser("compare", help="compare attention modules: params, FLOPs, latency, memory, accuracy")
    c.add_argument("config", type=Path, nargs="?", help="YAML config with a compare: section (optional)")
    c.add_argument("--data", help="data.path, e.g. shared:mnist/mnist.npz (without a config)")
    c.add_argument("--arch", help="model.arch: resnet20, resnet56, resnet110, resnet18 or small")
    c.add_argument("--modules", nargs="+", help="modules to compare (names, none, all)")
    c.add_argument("--seeds", nargs="+", type=int, help="training seeds")
    c.add_argument("--input-size", nargs=4, type=int, metavar=("B", "C", "H", "W"), help="benchmark input size")
    c.add_argument("--no-train", action="store_true", help="only parameters, FLOPs, latency and memory")
    c.add_argument("--out", help="compare.out_dir")
    c.add_argument("--device", default=None, help="training device (overrides training.device)")
    add_set_arg(c)
    c.set_defaults(func=handle_compare)

    ls = vsub.add_parser("list", help="list the registered attention modules")
    ls.set_defaults(func=handle_list)


def _compare_config(args: argparse.Namespace):
    """The comparison config: the YAML file (if given) with ``--set`` and the shortcut flags applied."""
    from vision.config import VisionCompareConfig

    from ..config import apply_overrides, from_dict, load_config
    from ..training import overrides_from_args

    overrides = overrides_from_args(args)
    for key, value in (("data.path", args.data), ("model.arch", args.arch), ("compare.modules", args.modules),
                       ("compare.seeds", args.seeds), ("compare.input_size", args.input_size),
                       ("compare.out_dir", args.out)):
        if value is not None:
            overrides[key] = value
    if args.no_train:
        overrides["compare.train"] = False
    if args.config is not None:
        return load_config(VisionCompareConfig, args.config, overrides)
    return from_dict(VisionCompareConfig, apply_overrides({"data": {}}, overrides), "<command line>")


def handle_compare(args: argparse.Namespace) -> int:
    from vision.compare import compare_modules

    cfg = _compare_config(args)
    results = compare_modules(cfg, device=args.device)
    print((Path(cfg.compare.out_dir) / "results.md").read_text(encoding="utf-8"))
    return 1 if any(r.error for r in results) and not cfg.compare.skip_failed else 0


def handle_test(args: argparse.Namespace) -> int:
    from vision.lifecycle import evaluate, load_run

    from ..training import overrides_from_args

    overrides = overrides_from_args(args)
    evaluate(load_run(args.run_dir, args.device, args.which, overrides=overrides), args.out, overrides)
    return 0


def handle_list(args: argparse.Namespace) -> int:
    from vision import list_attention

    for name in list_attention():
        print(name)
    return 0
