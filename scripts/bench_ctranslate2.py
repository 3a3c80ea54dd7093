"""CTranslate2 against our own search on one Transformer run, side by side in one process: how often the outputs
are identical (greedy and beam), and sentences per second (our beam search; CTranslate2 float32 and int8), all
with the same number of CPU threads.

    python scripts/bench_ctranslate2.py runs/multi30k_transformer_cpu \
        --src shared:multi30k/test_2016_flickr.de.gz --beam 5 --threads 2 --out ct2.json

The run is exported to ``--ct2-dir`` first when that directory has no model (float32; int8 is chosen at load
time). Prints a markdown table; ``--out`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch


def read_sources(spec: str, limit: int | None) -> list[str]:
    from seq2seq_attn.paths import resolve_path

    path = Path(resolve_path(spec))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return lines[:limit] if limit else lines


def timed(engine, sources: list[str], beam: int) -> tuple[list[str], float]:
    """Outputs and seconds of translating ``sources``, after a warm-up call on a few of them."""
    engine.translate(sources[:8], beam)
    t0 = time.perf_counter()
    hyps = engine.translate(sources, beam)
    seconds = time.perf_counter() - t0
    return [engine.detok(h[0].tokens) if h else "" for h in hyps], seconds


def same(a: list[str], b: list[str]) -> float:
    return 100.0 * sum(x == y for x, y in zip(a, b)) / max(1, len(a))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--src", required=True, help="source sentences, one a line (.gz, shared: allowed)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch and CTranslate2 intra-op threads")
    p.add_argument("--ct2-dir", type=Path, default=None, help="the CTranslate2 export (default: a temporary one)")
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from seq2seq_attn.export.ct2 import MODEL_FILE, export_ctranslate2, load_ct2
    from seq2seq_attn.translation.lifecycle import load_run

    sources = read_sources(args.src, args.limit)
    ours = load_run(args.run_dir, "cpu")
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    ct2_dir = args.ct2_dir or Path(tmp.name) / "ct2"
    if not (ct2_dir / MODEL_FILE).is_file():
        export_ctranslate2(args.run_dir, ct2_dir)
    engines = {"ours": ours, "ctranslate2 float32": load_ct2(ct2_dir, "float32", threads=args.threads),
               "ctranslate2 int8": load_ct2(ct2_dir, "int8", threads=args.threads)}
    outputs: dict[str, dict[int, list[str]]] = {name: {} for name in engines}
    rows = []
    for beam in (1, args.beam):
        for name, engine in engines.items():
            out, seconds = timed(engine, sources, beam)
            outputs[name][beam] = out
            rows.append({"engine": name, "beam": beam, "sentences": len(sources), "seconds": seconds,
                         "sentences_per_s": len(sources) / seconds,
                         "identical_to_ours_pct": same(out, outputs["ours"][beam])})
    base = {r["beam"]: r["sentences_per_s"] for r in rows if r["engine"] == "ours"}
    machine = platform.processor() or platform.machine()
    print(f"{len(sources)} sentences of {args.src}, {args.threads} threads, {machine}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print("| engine | beam | sentences/s | speed vs ours | identical to ours |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        speed = r["sentences_per_s"] / base[r["beam"]]
        print(f"| {r['engine']} | {r['beam']} | {r['sentences_per_s']:.1f} | {speed:.2f}x | "
              f"{r['identical_to_ours_pct']:.1f} % |")
    if args.out is not None:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=1), encoding="utf-8")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
