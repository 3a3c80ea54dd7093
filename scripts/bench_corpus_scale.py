"""Corpora at scale (issue 18): the cost of the training corpus as it grows, memory-mapped against in-memory.

Builds training corpora of N pairs by repeating Multi30k's training split (``shared:multi30k``), then for each
size, side by side:

* ``mmap`` (this checkout): ``seq2seq-attn prepare`` (subword training + encoding into the cache: wall time,
  encoding throughput in pairs/s, peak RSS), then a training process on the cache hit;
* ``memory`` (the in-memory path: the code before the memory map, ``--baseline`` a checkout of it), one
  training process, which reads, trains subwords and encodes every time it starts.

A training process is this script's ``--child`` mode: it times the start (from the process's first line to
the first step: imports, corpus, subwords, model, the Trainer's setup and the epoch's batches), runs the real
Trainer for ``--steps`` steps of ``configs/multi30k_transformer_cpu.yaml`` (``training.cpu_threads`` 2) and
reports its peak RSS (``getrusage``, model and optimizer included) and steps/s (the Trainer's own
``metrics.jsonl``).

Run it alone on the machine's cores (e.g. ``flock /tmp/train.lock python scripts/bench_corpus_scale.py``);
results go to ``--out/results.json`` and a table on stdout; ``--plot`` writes the cost-against-size figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "multi30k_transformer_cpu.yaml"


def build_corpus(out: Path, pairs: int) -> tuple[Path, Path]:
    """``out/train.{de,en}``: Multi30k's training pairs repeated (and cut) to ``pairs`` lines."""
    sys.path.insert(0, str(REPO))
    from seq2seq_attn.paths import resolve_path
    from seq2seq_attn.translation.corpus import read_parallel

    src_path, tgt_path = out / "train.de", out / "train.en"
    if src_path.is_file() and tgt_path.is_file():
        return src_path, tgt_path
    src, tgt = read_parallel(resolve_path("shared:multi30k/train.de.gz"), resolve_path("shared:multi30k/train.en.gz"))
    out.mkdir(parents=True, exist_ok=True)
    for path, lines in ((src_path, src), (tgt_path, tgt)):
        block = "".join(line + "\n" for line in lines)
        with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as fh:
            for _ in range(pairs // len(lines)):
                fh.write(block)
            fh.write("".join(line + "\n" for line in lines[: pairs % len(lines)]))
        path.with_suffix(".tmp").rename(path)
    return src_path, tgt_path


def overrides(src: Path, tgt: Path, dev: Path, run_dir: Path, cache: Path | None, steps: int) -> list[str]:
    """``--set`` values of a run (``cache``: None for the in-memory code, which has no ``data.cache_dir``)."""
    return [f"data.train.src={src}", f"data.train.tgt={tgt}", f"data.dev.src={dev / 'dev.de'}",
            f"data.dev.tgt={dev / 'dev.en'}", "data.dev_bleu_sentences=20",
            *([f"data.cache_dir={cache}"] if cache is not None else []), f"training.run_dir={run_dir}",
            f"training.max_steps={steps}", f"training.log_every={steps}",
            "training.eval_every=null", "training.max_minutes=null", "training.keep_last=1", "training.cpu_threads=2"]


def child(args: argparse.Namespace) -> None:
    """One training process: start time, Trainer steps, peak RSS; prints one JSON line."""
    start = time.perf_counter()
    from seq2seq_attn.config import load_config
    from seq2seq_attn.training import run_training
    from seq2seq_attn.training.cli import parse_override
    from seq2seq_attn.translation.config import TranslationConfig
    from seq2seq_attn.translation.task import TranslationTask

    cfg = load_config(TranslationConfig, CONFIG, dict(parse_override(o) for o in args.set))
    cfg.training.apply_cpu_threads()
    task = TranslationTask(cfg, cfg.training.run_dir, log=lambda s: None)
    first_step: list[float] = []
    loss = task.loss

    def timed_loss(model, batch):  # the first call is the first step: everything before it is the start
        if not first_step:
            first_step.append(time.perf_counter() - start)
        return loss(model, batch)

    task.loss = timed_loss
    run_training(task, cfg.training, cfg)
    ready = first_step[0]
    lines = (Path(cfg.training.run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    record = [json.loads(line) for line in lines]
    steps_per_s = next(r["steps_per_s"] for r in record if r.get("kind") == "train")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"start_s": ready, "steps_per_s": steps_per_s, "rss_mb": rss}))


def run(cmd: list[str], pythonpath: Path, log: Path) -> tuple[str, float, float]:
    """Run ``cmd`` under ``/usr/bin/time -v``; returns (stdout, wall seconds, peak RSS MiB)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "SEQ2SEQ_ATTN_DATA": os.environ.get("SEQ2SEQ_ATTN_DATA", "")}
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    rss = next(int(line.split()[-1]) for line in proc.stderr.splitlines() if "Maximum resident set size" in line)
    return proc.stdout, wall, rss / 1024


def bench_size(pairs: int, args: argparse.Namespace, dev: Path, row: dict) -> dict:
    """Measure the arms ``args.arms`` at one size into ``row`` (earlier results of other arms stay)."""
    out = args.out / f"{pairs}"
    src, tgt = build_corpus(out / "data", pairs)
    cache = args.out / "cache"
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    row.update({"pairs": pairs, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "commit": commit})
    base = overrides(src, tgt, dev, out / "run_mmap_prepare", cache, args.steps)
    sets = [a for o in base for a in ("--set", o)]
    stdout, wall, rss = run([sys.executable, "-m", "seq2seq_attn", "prepare", str(CONFIG), *sets], REPO,
                            out / "prepare.log")
    lines = (out / "prepare.log").read_text(encoding="utf-8").splitlines()
    encoded = [line for line in lines if line.startswith("encoded ")]
    if encoded:  # else a cache hit: the earlier measurement stays
        seconds = float(encoded[0].split(" in ")[1].split(" s")[0])
        spm = next(float(line.split(" in ")[1].split(" s")[0]) for line in lines if line.startswith("subwords:"))
        row["prepare"] = {"prepare_s": wall, "subwords_s": spm, "encode_s": seconds,
                          "encode_pairs_per_s": pairs / seconds, "prepare_rss_mb": rss}
    arms = [("mmap", REPO)] + ([("memory", args.baseline)] if args.baseline and pairs <= args.baseline_max else [])
    for arm, path in arms:
        if arm not in args.arms:
            continue
        run_dir = out / f"run_{arm}"
        shutil.rmtree(run_dir, ignore_errors=True)
        arm_cache = cache if arm == "mmap" else None
        sets = [a for o in overrides(src, tgt, dev, run_dir, arm_cache, args.steps) for a in ("--set", o)]
        stdout, wall, rss = run([sys.executable, __file__, "--child", *sets], path, out / f"train_{arm}.log")
        result = json.loads(stdout.strip().splitlines()[-1])
        row[arm] = {**result, "train_wall_s": wall, "train_rss_mb": rss, "steps": args.steps}
        print(f"{pairs} {arm}: {row[arm]}", flush=True)
    return row


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for arm, style in (("mmap", "o-"), ("memory", "s--")):
        rows = [r for r in results if arm in r and "start_s" in r[arm]]
        x = [r["pairs"] for r in rows]
        axes[0].plot(x, [r[arm]["train_rss_mb"] for r in rows], style, label=arm)
        axes[1].plot(x, [r[arm]["start_s"] for r in rows], style, label=arm)
    for ax, title in zip(axes, ("peak RSS of the training process (MiB)", "start time (s; mmap: cache hit)")):
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(results: list[dict]) -> str:
    """The results as a markdown table (one row per size and arm)."""
    lines = ["| pairs | path | prepare: subwords / encoding (s) | encoding pairs/s | start (s) | peak RSS (MiB) | "
             "steps/s |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for arm in ("mmap", "memory"):
            if arm not in r:
                continue
            a, p = r[arm], r.get("prepare", {})
            prep = f"{p['subwords_s']:.1f} / {p['encode_s']:.1f}" if arm == "mmap" and p else "(every start)"
            rate = f"{p['encode_pairs_per_s']:,.0f}" if arm == "mmap" and p else ""
            lines.append(f"| {r['pairs']:,} | {arm} | {prep} | {rate} | {a['start_s']:.1f} | {a['train_rss_mb']:.0f} "
                         f"| {a['steps_per_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[30_000, 300_000, 1_000_000, 3_000_000])
    p.add_argument("--out", type=Path, default=Path("runs/corpus_scale"))
    p.add_argument("--baseline", type=Path, default=None, help="checkout of the in-memory code (before issue 18)")
    p.add_argument("--baseline-max", type=int, default=1_000_000, help="largest size the in-memory path runs")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--arms", nargs="+", default=["mmap", "memory"], help="which training processes to run")
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--table", action="store_true", help="print the markdown table of --out/results.json and stop")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.table:
        results = json.loads((args.out / "results.json").read_text())
        print(table(results))
        if args.plot:
            plot(results, args.plot)
        return None
    args.out.mkdir(parents=True, exist_ok=True)
    dev = args.out / "dev"
    if not dev.is_dir():
        sys.path.insert(0, str(REPO))
        from seq2seq_attn.paths import resolve_path
        from seq2seq_attn.translation.corpus import read_lines

        dev.mkdir()
        for side in ("de", "en"):
            lines = read_lines(resolve_path(f"shared:multi30k/val.{side}.gz"))[:100]
            (dev / f"dev.{side}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    for pairs in args.sizes:
        old = next((r for r in results if r["pairs"] == pairs), {})
        results = [r for r in results if r["pairs"] != pairs] + [bench_size(pairs, args, dev, old)]
        results.sort(key=lambda r: r["pairs"])
        results_path.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
