"""``seq2seq-attn export RUN_DIR --format ctranslate2|onnx OUT``: a trained run for an inference engine."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_weights_arg

    p = sub.add_parser("export", help="export a run: CTranslate2 (Transformer translation) or ONNX (classify, vision)")
    p.add_argument("run_dir", type=Path, help="a run dir written by a train command")
    p.add_argument("--format", required=True, choices=("ctranslate2", "onnx"),
                   help="ctranslate2: Transformer translation runs; onnx: classify and vision runs")
    p.add_argument("out", type=Path, help="output directory (written complete or not at all)")
    add_weights_arg(p)
    p.add_argument("--quantization", default=None, metavar="TYPE",
                   help="ctranslate2: store the weights as TYPE (e.g. int8); default float32 (any type can "
                   "still be chosen at load time with translate --compute-type)")
    p.add_argument("--inputs", type=Path, default=None, metavar="FILE",
                   help="onnx, classifiers: documents (one a line) to check onnxruntime against PyTorch on "
                   "(default: random token ids)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    if args.format == "ctranslate2":
        from ..export.ct2 import export_ctranslate2

        out = export_ctranslate2(args.run_dir, args.out, args.which, args.quantization, args.overwrite)
        print(f"wrote the CTranslate2 model to {out} (translate with: seq2seq-attn translate {out} "
              "--engine ctranslate2)")
        return 0
    from ..export.onnx_runs import export_onnx

    if args.quantization is not None:
        raise ValueError("--quantization is for --format ctranslate2")
    texts = None
    if args.inputs is not None:
        texts = [line.strip() for line in args.inputs.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"{args.inputs}: no documents")
    result = export_onnx(args.run_dir, args.out, args.which, texts, args.overwrite)
    print(f"wrote {result.path / 'model.onnx'} ({result.kind}); onnxruntime vs PyTorch on "
          f"{result.check_inputs}: max |difference| {result.max_abs_diff:.2e}")
    return 0
