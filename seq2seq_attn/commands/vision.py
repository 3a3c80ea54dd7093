"""``seq2seq-attn vision``: ``train CONFIG``, ``compare [CONFIG]`` and ``list`` (the attention modules)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training import add_training_args

    p = sub.add_parser("vision", help="image classification with attention modules: train, compare, list")
    vsub = p.add_subparsers(dest="vision_command", metavar="ACTION")
    vsub.required = True

    t = vsub.add_parser("train", help="train a ResNet (with an attention module) from a YAML config")
    t.add_argument("config", type=Path, help="YAML config (see configs/vision_*.yaml)")
    add_training_args(t)
    t.set_defaults(func=run_train)

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
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.max_epochs=1; repeatable")
    c.set_defaults(func=run_compare)

    ls = vsub.add_parser("list", help="list the registered attention modules")
    ls.set_defaults(func=run_list)


def run_train(args: argparse.Namespace) -> int:
    from vision.config import VisionConfig
    from vision.task import VisionTask

    from ..config import load_config
    from ..training import load_weights, overrides_from_args, train_from_args
    from ..training.runtime import resolve_device

    cfg = load_config(VisionConfig, args.config, overrides_from_args(args))
    cfg.training.apply_cpu_threads()  # before the data are decoded and augmented with torch
    task = VisionTask(cfg)
    code = train_from_args(task, cfg.training, cfg, args)
    if code != 0 or int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone tests
        return code
    device = resolve_device(args.device or cfg.training.device)
    model = task.build_model()
    path = load_weights(model, cfg.training.run_dir, which="best", device=device)
    metrics = task.evaluate_test(model.to(device), device)
    (Path(cfg.training.run_dir) / "test_metrics.json").write_text(
        json.dumps({"weights": str(path), **metrics}, indent=1), encoding="utf-8")
    print(f"test ({len(task.test_set)} images, {path.name}): acc {metrics['acc']:.2f}%, loss {metrics['loss']:.4f}")
    return 0


def _compare_config(args: argparse.Namespace):
    from vision.config import VisionCompareConfig

    from ..config import ConfigError, from_dict, load_config, parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    for key, value in (("data.path", args.data), ("model.arch", args.arch), ("compare.modules", args.modules),
                       ("compare.seeds", args.seeds), ("compare.input_size", args.input_size),
                       ("compare.out_dir", args.out)):
        if value is not None:
            overrides[key] = value
    if args.no_train:
        overrides["compare.train"] = False
    if args.config is not None:
        return load_config(VisionCompareConfig, args.config, overrides)
    data: dict = {}
    for dotted, value in overrides.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {part} is not a section")
        node[last] = value
    data.setdefault("data", {})
    return from_dict(VisionCompareConfig, data, "<command line>")


def run_compare(args: argparse.Namespace) -> int:
    from vision.compare import run_compare as compare

    cfg = _compare_config(args)
    results = compare(cfg, device=args.device)
    print((Path(cfg.compare.out_dir) / "results.md").read_text(encoding="utf-8"))
    return 1 if any(r.error for r in results) and not cfg.compare.skip_failed else 0


def run_list(args: argparse.Namespace) -> int:
    from vision import list_attention

    for name in list_attention():
        print(name)
    return 0
