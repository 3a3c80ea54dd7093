"""``seq2seq-attn classify {train,test,predict}``: attention-weighted document classification."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_training_args, add_weights_arg

    p = sub.add_parser("classify", help="document classification with attention explanations (train/test/predict)")
    cmds = p.add_subparsers(dest="classify_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="train a classifier from a YAML config (configs/cls_*.yaml)")
    t.add_argument("config", type=Path)
    add_training_args(t)
    t.set_defaults(func=run_train)

    for name in ("test", "evaluate"):
        e = cmds.add_parser(name, help="accuracy, macro-F1, per-class figures and confusion matrix of a run")
        e.add_argument("run_dir", type=Path)
        e.add_argument("--data", default=None,
                       help="labelled file in the run's data format (default: the config's data.test)")
        e.add_argument("--out", type=Path, default=None, help="folder for the report files (default: RUN_DIR)")
        add_weights_arg(e)
        e.add_argument("--device", default="auto")
        e.set_defaults(func=run_test)

    r = cmds.add_parser("predict", help="label documents (one per line, from a file or stdin)")
    r.add_argument("run_dir", type=Path)
    r.add_argument("--input", default="-", help="text file with one document per line; '-' reads stdin")
    r.add_argument("--explain", type=Path, default=None, metavar="PREFIX",
                   help="write PREFIX.jsonl (attention weight of every token) and PREFIX.html (highlighted)")
    add_weights_arg(r)
    r.add_argument("--device", default="auto")
    r.set_defaults(func=run_predict)


def _device(name: str):
    from ..training.runtime import resolve_device

    return resolve_device(name)


def _write_report(metrics: dict, cm, labels: list[str], out: Path, prefix: str) -> str:
    from ..classification.metrics import format_report, plot_confusion

    out.mkdir(parents=True, exist_ok=True)
    text = format_report(metrics, cm, labels)
    (out / f"{prefix}_report.txt").write_text(text, encoding="utf-8")
    (out / f"{prefix}_metrics.json").write_text(json.dumps({**metrics, "confusion": cm.tolist(), "labels": labels},
                                                           indent=1), encoding="utf-8")
    plot_confusion(cm, labels, out / f"{prefix}_confusion.png", title=f"{prefix}: confusion matrix")
    return text


def evaluate_run(run_dir: Path, spec: str | None, out: Path, which: str, device_name: str) -> dict:
    """Score a trained run on a labelled file; writes ``test_report.txt``, ``test_metrics.json`` and
    ``test_confusion.png`` into ``out``."""
    from ..classification.predict import load_run
    from ..classification.task import evaluate_split, load_split

    device = _device(device_name)
    cfg, model = load_run(run_dir, device, which)
    spec = spec or cfg.data.test
    if spec is None:
        raise ValueError(f"{run_dir}: the run's config has no data.test; pass --data FILE")
    split, labels, num_bad = load_split(cfg, run_dir, spec)
    metrics, cm = evaluate_split(model, split, labels, cfg.model.type == "han", cfg.data.eval_batch_size, device)
    metrics["bad_rows_skipped"] = num_bad
    metrics["data"] = spec
    text = _write_report(metrics, cm, labels, out, "test")
    print(text, end="")
    if num_bad:
        print(f"skipped {num_bad} bad rows")
    print(f"wrote {out / 'test_report.txt'}, {out / 'test_metrics.json'}, {out / 'test_confusion.png'}")
    return metrics


def run_train(args: argparse.Namespace) -> int:
    from ..classification.config import ClassificationConfig
    from ..classification.task import ClassificationData, ClassificationTask
    from ..config import load_config
    from ..training import prepare_run_dir, train_from_args
    from ..training.cli import overrides_from_args

    cfg = load_config(ClassificationConfig, args.config, overrides_from_args(args))
    # Check the run dir before anything is written; the trainer creates it and saves the config.
    run_dir = prepare_run_dir(cfg.training.run_dir, cfg, resume=args.resume, overwrite=args.overwrite, write=False)
    data = ClassificationData(cfg, run_dir, resume=args.resume)  # saves labels.json and the vocabulary
    if data.num_bad:
        print(f"skipped {data.num_bad} bad rows (data.skip_bad_rows)")
    print(f"train {len(data.train)} documents, valid {len(data.valid) if data.valid else 0}, "
          f"{len(data.labels)} labels, vocabulary {len(data.vocab)}")
    code = train_from_args(ClassificationTask(cfg, data, resume=args.resume), cfg.training, cfg, args)
    if code == 0 and cfg.data.test is not None:
        evaluate_run(run_dir, None, run_dir, "best", args.device or cfg.training.device)
    return code


def run_test(args: argparse.Namespace) -> int:
    evaluate_run(args.run_dir, args.data, args.out or args.run_dir, args.which, args.device)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..classification.explain import write_html, write_jsonl
    from ..classification.predict import Predictor

    if args.input == "-":
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: input file not found")
        lines = path.read_text(encoding="utf-8").splitlines()
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"{args.input}: no documents (one non-empty line per document)")
    predictor = Predictor(args.run_dir, _device(args.device), args.which)
    explanations = predictor.explain(texts)
    for ex in explanations:
        probs = " ".join(f"{k}={v:.4f}" for k, v in ex.probabilities.items())
        print(f"{ex.label}\t{ex.probabilities[ex.label]:.4f}\t{probs}")
    if args.explain is not None:
        prefix = args.explain.with_suffix("") if args.explain.suffix in (".html", ".jsonl") else args.explain
        jsonl, page = Path(f"{prefix}.jsonl"), Path(f"{prefix}.html")
        write_jsonl(explanations, jsonl)
        write_html(explanations, page, title=f"attention explanations: {args.run_dir}")
        print(f"wrote {jsonl} and {page}", file=sys.stderr)
    return 0
