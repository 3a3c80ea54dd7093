"""Soft against hard attention on one text-classification config, side by side: the same recipe and seeds with
each normalizer (``softmax``; ``hard``, the arg-max straight-through; ``gumbel``, straight-through
Gumbel-softmax; ``categorical``, Xu et al.'s REINFORCE), one run after the other, each through
``seq2seq-attn classify train``. Per run: test accuracy, training seconds and the attention entropy on the
test split, the entropy (nats per query) of the softmax distribution each normalizer samples from or takes the
arg-max of (the pooling's normalizer swapped for a softmax of the same temperature when measuring).

    python scripts/bench_hard_attention.py configs/cls_trec.yaml --seeds 1 2 3 --out runs/hard_trec \\
        --set model.pretrained_embeddings=null      # prints a Markdown table, writes OUT/results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

NORMALIZERS = ("softmax", "hard", "gumbel", "categorical")


@torch.no_grad()
def test_entropy(run_dir: Path) -> float:
    """Mean entropy (nats) of the pooling attention's softmax distribution over the run's test documents."""
    from seq2seq_attn.attention import Softmax, capture_attention
    from seq2seq_attn.classification.lifecycle import load_run
    from seq2seq_attn.classification.task import load_split, predict_docs

    run = load_run(run_dir, "cpu")
    for module in run.model.modules():
        if hasattr(module, "normalize") and hasattr(module.normalize, "temperature"):
            module.normalize = Softmax(module.normalize.temperature)
    split, _ = load_split(run.cfg, run.vocab, run.labels, run.cfg.data.test)
    with capture_attention(run.model) as maps:
        predict_docs(run.model, split.docs, run.hierarchical, run.cfg.data.eval_batch_size, run.device)
    rows = [w.reshape(-1, w.shape[-1]) for ws in maps.values() for w in ws]  # (rows, keys) per call
    rows = [r[r.sum(-1) > 0] for r in rows]  # rows with at least one allowed key
    weights = torch.cat([torch.nn.functional.pad(r, (0, max(x.shape[-1] for x in rows) - r.shape[-1]))
                         for r in rows])
    return float(-(weights * weights.clamp_min(1e-30).log()).sum(-1).mean())


def run_one(config: Path, name: str, seed: int, out: Path, sets: list[str]) -> dict:
    run_dir = out / f"{name}-s{seed}"
    cmd = [sys.executable, "-m", "seq2seq_attn", "classify", "train", str(config), "--overwrite",
           "--set", f"model.normalize={name}", "--set", f"training.seed={seed}",
           "--set", f"training.run_dir={run_dir}", "--set", "training.progress=false"]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "test_metrics.json").read_text(encoding="utf-8"))
    return {"normalize": name, "seed": seed, "test_acc": 100 * metrics["accuracy"], "seconds": seconds,
            "entropy": test_entropy(run_dir)}


def table(results: list[dict]) -> str:
    lines = ["| attention | test accuracy (mean ± std over seeds) | per seed | training + test s (mean) | "
             "attention entropy, nats (mean) |", "| --- | ---: | --- | ---: | ---: |"]
    for name in NORMALIZERS:
        rows = [r for r in results if r["normalize"] == name]
        if not rows:
            continue
        accs = [r["test_acc"] for r in rows]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        lines.append(f"| {name} | {statistics.mean(accs):.2f} % ± {std:.2f} | "
                     f"{', '.join(f'{a:.1f}' for a in accs)} | {statistics.mean(r['seconds'] for r in rows):.0f} | "
                     f"{statistics.mean(r['entropy'] for r in rows):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--normalizers", nargs="+", default=list(NORMALIZERS), choices=NORMALIZERS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    results = []
    for seed in args.seeds:  # all normalizers of one seed before the next seed: partial results stay comparable
        for name in args.normalizers:
            results.append(run_one(args.config, name, seed, args.out, args.set))
            print(json.dumps(results[-1]), flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
