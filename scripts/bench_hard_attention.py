"""Soft against hard attention on one config, side by side: the same recipe and seeds with each normalizer
(``softmax``; ``hard``, the arg-max straight-through; ``gumbel``, straight-through Gumbel-softmax;
``categorical``, Xu et al.'s REINFORCE), one run after the other, each trained in its own process.

Two tasks (``--task``):

- ``classify`` (default): ``seq2seq-attn classify train`` with ``model.normalize``; quality = test accuracy (%)
  from the ``test_metrics.json`` training writes; seconds = training + its test evaluation.
- ``translate``: ``seq2seq-attn train`` with ``model.rnn.normalize`` (the RNN decoder's attention, Bahdanau
  or Luong); quality = sacrebleu BLEU of the best weights on the config's ``data.test``, decoded afterwards as
  ``seq2seq-attn test`` does (beam and length penalty from the config's ``decoding``); seconds = training
  only (the test decode is ``test_seconds``).

Attention entropy (nats, mean over queries): the entropy of the softmax distribution each normalizer samples
from or takes the arg-max of (every normalizer with a temperature swapped for a softmax of the same
temperature when measuring), over the allowed keys only (masked ones get weight 0), on the test split.
Classification: one query row per pooling query of each test document. Translation: teacher forcing on the
test references (source + EOS, BOS + reference), one row per target position (each reference token and EOS);
sentences are batched by equal reference length, so no padded target position is counted.

    python scripts/bench_hard_attention.py configs/cls_trec.yaml --seeds 1 2 3 --out runs/hard_trec \\
        --set model.pretrained_embeddings=null      # prints a Markdown table, writes OUT/results.json
    python scripts/bench_hard_attention.py configs/multi30k_bahdanau_cpu.yaml --task translate \\
        --seeds 1 --normalizers softmax hard --out runs/hard_m30k_a
    python scripts/bench_hard_attention.py --table runs/hard_m30k_a runs/hard_m30k_b   # one table of both
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

NORMALIZERS = ("softmax", "hard", "gumbel", "categorical")


def soft_normalizers(model: nn.Module) -> None:
    """Swap every attention normalizer of ``model`` (anything with a ``temperature``) for a :class:`Softmax`
    of the same temperature, in place."""
    from seq2seq_attn.attention import Softmax

    for module in model.modules():
        if hasattr(module, "normalize") and hasattr(module.normalize, "temperature"):
            module.normalize = Softmax(module.normalize.temperature)


def mean_entropy(maps: dict[str, list[torch.Tensor]], where: Path) -> float:
    """Mean entropy (nats per query row) of ``capture_attention``'s weights; ``ValueError`` naming ``where``
    when nothing recorded a distribution."""
    from seq2seq_attn.study.measure import pool_stats

    stats = pool_stats(maps, image=False)
    if "entropy" not in stats:
        raise ValueError(f"{where}: the model recorded no attention distribution on the test split")
    return stats["entropy"]


@torch.no_grad()
def classify_measure(run_dir: Path) -> dict[str, float]:
    """Test accuracy (%, from ``test_metrics.json``) and the pooling attention's entropy on the test documents."""
    from seq2seq_attn.attention import capture_attention
    from seq2seq_attn.classification.lifecycle import load_run
    from seq2seq_attn.classification.task import load_split, predict_docs

    metrics = json.loads((run_dir / "test_metrics.json").read_text(encoding="utf-8"))
    run = load_run(run_dir, "cpu")
    soft_normalizers(run.model)
    split, _ = load_split(run.cfg, run.vocab, run.labels, run.cfg.data.test)
    with capture_attention(run.model, cpu=True) as maps:
        predict_docs(run.model, split.docs, run.hierarchical, run.cfg.data.eval_batch_size, run.device)
    return {"test_acc": 100 * metrics["accuracy"], "entropy": mean_entropy(maps, run_dir)}


@torch.no_grad()
def translate_measure(run_dir: Path) -> dict[str, float]:
    """Test BLEU (sacrebleu, best weights, the config's ``decoding``), its decode seconds, and the decoder's
    cross-attention entropy under teacher forcing on the test references (batched by reference length)."""
    from seq2seq_attn.attention import capture_attention
    from seq2seq_attn.paths import resolve_path
    from seq2seq_attn.study.tasks import quality
    from seq2seq_attn.translation.corpus import read_parallel
    from seq2seq_attn.translation.data import collate_pairs
    from seq2seq_attn.translation.lifecycle import load_run

    start = time.perf_counter()
    bleu = quality("translation", run_dir, "cpu")["bleu"]
    test_seconds = time.perf_counter() - start
    run = load_run(run_dir, "cpu")
    soft_normalizers(run.model)
    test = run.cfg.data.test
    sources, refs = read_parallel(resolve_path(str(test.src)), resolve_path(str(test.tgt)))
    src, tgt = run.vocabs.encode_src(sources), run.vocabs.encode_tgt(refs)
    order = sorted((i for i in range(len(src)) if sources[i].strip() and tgt[i]), key=lambda i: len(tgt[i]))
    size = run.cfg.data.eval_batch_size
    with capture_attention(run.model, cpu=True) as maps:
        for _, same in itertools.groupby(order, key=lambda i: len(tgt[i])):  # equal reference lengths
            same = list(same)
            for k in range(0, len(same), size):
                idx = same[k:k + size]
                batch = collate_pairs([src[i] for i in idx], [tgt[i] for i in idx], idx).to(run.device)
                run.model(batch.src, batch.src_pad_mask, batch.tgt_in)  # (B, T, V), weights recorded
    return {"bleu": bleu, "test_seconds": test_seconds, "entropy": mean_entropy(maps, run_dir)}


@dataclass(frozen=True)
class Task:
    """What differs between the tasks: the training command, the normalizer's config key, the quality
    figure (results key, table header, format) and the measurement after training."""

    command: tuple[str, ...]
    normalize_key: str
    quality: str
    quality_header: str
    unit: str
    seconds_header: str
    measure: Callable[[Path], dict[str, float]]


TASKS = {
    "classify": Task(("classify", "train"), "model.normalize", "test_acc", "test accuracy", " %",
                     "training + test s (mean)", classify_measure),
    "translate": Task(("train",), "model.rnn.normalize", "bleu", "test BLEU", "", "training s (mean)",
                      translate_measure),
}


def run_one(task: str, config: Path, name: str, seed: int, out: Path, sets: list[str]) -> dict:
    """Train one normalizer and seed into ``out/NAME-sSEED`` (``--overwrite``) and measure it."""
    spec = TASKS[task]
    run_dir = out / f"{name}-s{seed}"
    cmd = [sys.executable, "-m", "seq2seq_attn", *spec.command, str(config), "--overwrite",
           "--set", f"{spec.normalize_key}={name}", "--set", f"training.seed={seed}",
           "--set", f"training.run_dir={run_dir}", "--set", "training.progress=false"]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return {"task": task, "normalize": name, "seed": seed, "seconds": seconds, **spec.measure(run_dir)}


def table(results: list[dict]) -> str:
    """The Markdown table of ``results`` (rows of one task): per normalizer the quality mean ± std over
    seeds, each seed's figure, mean seconds and mean attention entropy. ``ValueError`` for mixed tasks."""
    tasks = {r.get("task", "classify") for r in results}  # results written before --task were classify
    if len(tasks) != 1:
        raise ValueError(f"results of different tasks cannot share a table: {sorted(tasks)}")
    spec = TASKS[tasks.pop()]
    lines = [f"| attention | {spec.quality_header} (mean ± std over seeds) | per seed | {spec.seconds_header} | "
             "attention entropy, nats (mean) |", "| --- | ---: | --- | ---: | ---: |"]
    for name in NORMALIZERS:
        rows = sorted((r for r in results if r["normalize"] == name), key=lambda r: r["seed"])
        if not rows:
            continue
        values = [r[spec.quality] for r in rows]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {name} | {statistics.mean(values):.2f}{spec.unit} ± {std:.2f} | "
                     f"{', '.join(f'{v:.1f}' for v in values)} | {statistics.mean(r['seconds'] for r in rows):.0f} | "
                     f"{statistics.mean(r['entropy'] for r in rows):.3f} |")
    return "\n".join(lines)


def read_results(dirs: list[Path]) -> list[dict]:
    """The rows of every ``DIR/results.json``; ``ValueError`` naming a missing or unreadable file or a
    normalizer and seed present twice."""
    rows: list[dict] = []
    for d in dirs:
        path = d / "results.json"
        try:
            rows += json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read the results ({e})") from None
    seen = [(r["normalize"], r["seed"]) for r in rows]
    twice = sorted({k for k in seen if seen.count(k) > 1})
    if twice:
        raise ValueError(f"{', '.join(str(d) for d in dirs)}: normalizer and seed measured twice: {twice}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--task", choices=sorted(TASKS), default="classify")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--normalizers", nargs="+", default=list(NORMALIZERS), choices=NORMALIZERS)
    parser.add_argument("--out", type=Path, help="folder of the runs and results.json")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--table", nargs="+", type=Path, metavar="DIR",
                        help="train nothing: print one table of the results.json in each DIR (e.g. two halves)")
    args = parser.parse_args()
    if args.table:
        try:
            print(table(read_results(args.table)))
        except ValueError as e:
            parser.error(str(e))
        return
    if args.config is None or args.out is None:
        parser.error("CONFIG and --out are required (unless --table)")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    results = []
    for seed in args.seeds:  # all normalizers of one seed before the next seed: partial results stay comparable
        for name in args.normalizers:
            results.append(run_one(args.task, args.config, name, seed, args.out, args.set))
            print(json.dumps(results[-1]), flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
