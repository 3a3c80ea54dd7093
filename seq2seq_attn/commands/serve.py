"""``seq2seq-attn serve RUN_DIR [--host --port]``: an HTTP server for a translation or classify run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_weights_arg

    p = sub.add_parser("serve", help="serve a translation or classify run over HTTP (POST /translate, /classify)")
    p.add_argument("run_dir", type=Path, help="a run dir, or a directory written by `export --format ctranslate2`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--engine", choices=("torch", "ctranslate2"), default="torch",
                   help="ctranslate2: RUN_DIR is a CTranslate2 export of a Transformer run")
    p.add_argument("--compute-type", default="default", metavar="TYPE", help="ctranslate2: float32, int8, ...")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_weights_arg(p)
    g = p.add_argument_group("batching and limits")
    g.add_argument("--max-batch", type=int, default=64, help="most sentences/documents in one model call")
    g.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request may wait for others to join")
    g.add_argument("--no-batching", action="store_true", help="one model call per request")
    g.add_argument("--max-items", type=int, default=64, help="most sentences/documents per request")
    g.add_argument("--max-chars", type=int, default=2000, help="most characters per sentence/document")
    g.add_argument("--max-beam", type=int, default=16, help="largest beam a request may ask for")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    import uvicorn

    from ..serve.app import create_app
    from ..serve.engines import Limits, load_engine

    if min(args.max_items, args.max_chars, args.max_beam, args.max_batch) < 1 or args.max_wait_ms < 0:
        raise ValueError("--max-items, --max-chars, --max-beam and --max-batch must be >= 1, --max-wait-ms >= 0")
    engine = load_engine(args.run_dir, Limits(args.max_items, args.max_chars, args.max_beam), args.engine,
                         args.device, args.which, args.compute_type)
    app = create_app(engine, args.max_batch, args.max_wait_ms, not args.no_batching)
    print(f"serving {args.run_dir} ({engine.task}) on http://{args.host}:{args.port} (OpenAPI page: /docs)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
