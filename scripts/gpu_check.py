#!/usr/bin/env python
"""GPU readiness in one prepared run: every GPU figure of the project from one command (``scripts/gpu_check.sh``).

Sections, in this order, each appended to the Markdown report (and flushed to disk) as soon as it finishes, so a
run stopped by a time limit still leaves every finished section:

1. ``rnn``, ``transformer``, ``classifier``, ``vision``: a short bf16 training of each task's GPU config
   (``configs/multi30k_bahdanau.yaml``, ``multi30k_transformer.yaml``, ``cls_imdb_bilstm.yaml``,
   ``vision_cifar10_resnet56.yaml`` with CBAM, channels-last) through the ordinary CLIs with ``--set`` overrides
   (a time or step budget, bf16); steps, steps/s, last loss and the metric of each.
2. ``attention``: ``scripts/bench_attention.py`` in bf16 (our MultiHeadAttention against PyTorch's).
3. ``transformer_bench``: ``scripts/bench_transformer.py --only step --only mfu`` in bf16 (step ratio against
   ``torch.nn.Transformer``, Transformer-base MFU against the measured matmul peak).
4. ``beam``: ``bench_transformer.py --only beam`` on the run of section 1: sentences/s with and without the
   key/value cache.
5. ``trainer``: ``scripts/bench_trainer.py`` (Trainer against a hand-written loop) on the device.
6. ``compile``: the vision training once more with ``training.compile: true`` (ResNet-20, CBAM).

Every section reports its peak memory (CUDA: allocated; CPU: the process's peak resident size so far).
On the GPU machine the data come from ``$SEQ2SEQ_ATTN_DATA`` (``bash scripts/gpu_data.sh`` copies the small files
it needs into ``.devdata/``). ``--tiny --device cpu`` runs the same sections with tiny sizes on the CPU, on a data
folder generated from the demo data of ``data/`` (tested in the default suite, so the command cannot rot).

    bash scripts/gpu_check.sh                          # GPU: docs/gpu_report.md, under 6 minutes on one H100/H200
    bash scripts/gpu_check.sh --tiny --device cpu --out /tmp/gpu_report.md
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import gzip
import importlib.util
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["rnn", "transformer", "classifier", "vision", "attention", "transformer_bench", "beam", "trainer",
            "compile"]

VISION = ["training.max_epochs=1", "model.attention=cbam", "training.channels_last=true"]
VISION_TINY = ["training.max_steps=2", *VISION, "model.arch=small", "model.widths=[4,8,8]", "model.blocks=[1,1,1]",
               "data.batch_size=8", "data.eval_batch_size=16"]
#: Per training: (CLI words, config, overrides on the GPU, overrides in --tiny mode).
TRAININGS = {
    "rnn": (["train"], "configs/multi30k_bahdanau.yaml",
            ["training.max_minutes=0.4", "data.dev_bleu_sentences=200"],
            ["training.max_steps=3", "data.vocab_size=120", "data.max_tokens=300", "data.dev_bleu_sentences=8",
             "model.rnn.emb_dim=16", "model.rnn.enc_hidden=16", "model.rnn.dec_hidden=32",
             "model.rnn.attn_hidden=16", "decoding.beam_size=2", "decoding.max_len_b=4"]),
    "transformer": (["train"], "configs/multi30k_transformer.yaml",
                    ["training.max_minutes=0.5", "training.warmup_steps=300", "data.dev_bleu_sentences=200"],
                    ["training.max_steps=3", "data.vocab_size=120", "data.max_tokens=300",
                     "data.dev_bleu_sentences=8", "model.transformer.d_model=16", "model.transformer.heads=2",
                     "model.transformer.encoder_layers=1", "model.transformer.decoder_layers=1",
                     "model.transformer.ffn_dim=32", "decoding.beam_size=2", "decoding.max_len_b=4"]),
    "classifier": (["classify", "train"], "configs/cls_imdb_bilstm.yaml", ["training.max_minutes=0.35"],
                   ["training.max_steps=3", "data.vocab_size=200", "data.max_tokens=40", "data.batch_size=8",
                    "model.embed_dim=8", "model.hidden_size=8"]),
    "vision": (["vision", "train"], "configs/vision_cifar10_resnet56.yaml",
               ["training.max_minutes=0.5", *VISION], [*VISION_TINY]),
}
COMPILE = (["vision", "train"], "configs/vision_cifar10_resnet56.yaml",
           ["training.max_minutes=0.5", "model.arch=resnet20", *VISION], [*VISION_TINY])


class Report:
    """The Markdown report: every write is appended, flushed and synced to disk at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n\n")
            f.flush()
            os.fsync(f.fileno())


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses of the script look their module up
    spec.loader.exec_module(module)
    return module


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> str:
    """Peak CUDA memory allocated since the last reset, or the process's peak resident size on the CPU."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated (CUDA)"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; the process's peak so far
    return f"{rss_kib / 2**20:.2f} GiB resident (process peak so far, CPU)"


def _summary(run_dir: Path) -> list[str]:
    """The last training record (loss, speed) and the last evaluation of a run, from its ``metrics.jsonl``."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return [f"- no {path.name} in {run_dir}"]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for kind in ("train", "eval"):
        last = next((r for r in reversed(records) if r.get("kind") == kind), None)
        if last is not None:
            shown = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items() if k != "kind"]
            lines.append(f"- last {kind} record: " + ", ".join(shown))
    return lines


def run_training(name: str, spec: tuple, args: argparse.Namespace, extra: list[str] = ()) -> list[str]:
    """Train one config through its CLI in this process; the report lines for it."""
    from seq2seq_attn.cli import main as cli

    words, config, gpu_sets, tiny_sets = spec
    run_dir = args.work / name
    sets = [f"training.run_dir={run_dir}", f"training.device={args.device}", "training.precision=bf16",
            "training.progress=false", "training.keep_last=1", *(tiny_sets if args.tiny else gpu_sets), *extra]
    if args.tiny:
        sets += ["training.cpu_threads=1", "training.log_every=1"]
    argv = [*words, config, "--overwrite", *[x for s in sets for x in ("--set", s)]]
    start = time.perf_counter()
    code = cli(argv)
    seconds = time.perf_counter() - start
    return [f"Command: `seq2seq-attn {' '.join(argv)}`", "",
            f"- exit code {code}, {seconds:.1f} s wall (data, training, evaluation)", *_summary(run_dir)]


def bench_attention(args: argparse.Namespace) -> list[str]:
    sizes = ["--batch", "2", "--dim", "16", "--heads", "2", "--seqs", "8", "--reps", "2", "--warmup", "1"] \
        if args.tiny else []
    _script("bench_attention").main(["--device", args.device, "--dtype", "bf16", "--markdown", str(args.out),
                                     *sizes])
    return ["(from `scripts/bench_attention.py`)"]


def bench_transformer(args: argparse.Namespace) -> list[str]:
    sizes = ["--d-model", "16", "--heads", "2", "--layers", "1", "--ffn", "32", "--vocab", "50", "--batch", "2",
             "--src-len", "6", "--tgt-len", "6", "--mfu-batch", "2", "--mfu-len", "8", "--mfu-vocab", "64",
             "--peak-n", "64", "--reps", "2", "--warmup", "1"] if args.tiny else []
    _script("bench_transformer").main(["--only", "step", "--only", "mfu", "--device", args.device, "--dtype", "bf16",
                                       "--markdown", str(args.out), *sizes])
    return ["(from `scripts/bench_transformer.py`; MFU is meant for a GPU)"]


def bench_beam(args: argparse.Namespace) -> list[str]:
    src = args.data / "multi30k" / "test_2016_flickr.de.gz"
    if not (args.work / "transformer" / "best.safetensors").is_file():
        raise FileNotFoundError(f"{args.work / 'transformer'}: no trained run; beam needs the transformer section")
    _script("bench_transformer").main(["--only", "beam", "--run", str(args.work / "transformer"), "--src", str(src),
                                       "--limit", "6" if args.tiny else "500", "--beam", "5", "--device",
                                       args.device, "--dtype", "bf16", "--markdown", str(args.out)])
    return ["(the Transformer run of this report, undertrained: only the speeds matter)"]


def bench_trainer(args: argparse.Namespace) -> list[str]:
    # its steady rate needs two 50-step windows after the first
    sizes = ["--steps", "100", "--rounds", "1", "--batch", "2", "--seq", "4", "--d-model", "8", "--layers", "1"] \
        if args.tiny else ["--steps", "300", "--rounds", "2"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _script("bench_trainer").main(["--device", args.device, "--precision", "bf16", *sizes])
    print(out.getvalue(), end="")
    return [f"Command: `python scripts/bench_trainer.py --device {args.device} --precision bf16 {' '.join(sizes)}`",
            "", "```", out.getvalue().strip(), "```"]


def _header(args: argparse.Namespace, argv: list[str]) -> str:
    import torch

    if args.device.startswith("cuda"):
        machine = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    else:
        machine = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "tiny sizes (a test of the command, not a measurement)" if args.tiny else "full sizes"
    return (f"# GPU check ({mode})\n\nCommand: `bash scripts/gpu_check.sh {' '.join(argv)}`; machine: {machine}; "
            f"torch {torch.__version__}; commit {commit}; {now}; data {args.data}. Sections are appended as they "
            f"finish; a section without its closing time did not finish.")


def make_tiny_data(dest: Path) -> Path:
    """A data folder with the shared folder's layout (the files the GPU configs name), from ``data/demo`` and
    ``data/cls_demo`` and random images: small enough for seconds on a CPU."""
    import numpy as np

    demo = ROOT / "data" / "demo"
    for split, name, n in [("train", "train", 400), ("dev", "val", 40), ("test", "test_2016_flickr", 12)]:
        for lang in ("de", "en"):
            lines = (demo / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:n]
            (dest / "multi30k").mkdir(parents=True, exist_ok=True)
            (dest / "multi30k" / f"{name}.{lang}.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (dest / "imdb").mkdir(exist_ok=True)
    for split in ("train", "test"):
        rows = (ROOT / "data" / "cls_demo" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([("label", "text"), *((int(label == "pos"), text) for
                                                         text, label in (row.split("\t") for row in rows))])
        (dest / "imdb" / f"{split}.csv.gz").write_bytes(gzip.compress(out.getvalue().encode()))
    rng = np.random.default_rng(0)
    (dest / "cifar10").mkdir(exist_ok=True)
    np.savez(dest / "cifar10" / "cifar10_yoongikim_jpeg.npz",
             x_train=rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), y_train=np.arange(32) % 10,
             x_test=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), y_test=np.arange(16) % 10)
    return dest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes and generated data: a test of the command")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "gpu_report.md", help="the Markdown report")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "gpu_check", help="run dirs of the trainings")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="run these sections only")
    args = p.parse_args(argv)
    if args.tiny:
        import functools

        import torch

        # Inductor's C++ code generation takes minutes on a small CPU: the tiny run traces the model with dynamo
        # and runs it eagerly, which keeps the trainer's training.compile path under test.
        torch.compile = functools.partial(torch.compile, backend="eager")
        os.environ["SEQ2SEQ_ATTN_DATA"] = str(make_tiny_data(args.work / "data"))
    elif not os.environ.get("SEQ2SEQ_ATTN_DATA"):
        p.error("set SEQ2SEQ_ATTN_DATA to the data folder (bash scripts/gpu_data.sh copies it to .devdata/)")
    args.data = Path(os.environ["SEQ2SEQ_ATTN_DATA"]).resolve()
    os.environ["SEQ2SEQ_ATTN_DATA"] = str(args.data)
    args.out, args.work = args.out.resolve(), args.work.resolve()
    os.chdir(ROOT)  # the configs' relative paths
    if args.out.exists():
        args.out.unlink()
    report = Report(args.out)
    report.write(_header(args, argv))
    sections = {**{name: (lambda n=name: run_training(n, TRAININGS[n], args)) for name in TRAININGS},
                "attention": lambda: bench_attention(args), "transformer_bench": lambda: bench_transformer(args),
                "beam": lambda: bench_beam(args), "trainer": lambda: bench_trainer(args),
                "compile": lambda: run_training("compile", COMPILE, args, ["training.compile=true"])}
    failed = 0
    for name in args.only:
        print(f"== gpu_check: {name}", flush=True)
        report.write(f"## {name}")  # the benchmark scripts append their tables under it
        start = time.perf_counter()
        _reset_peak(args.device)
        try:
            lines = sections[name]()
        except Exception as e:  # one failing section must not cost the others: say what failed and go on
            failed += 1
            traceback.print_exc()  # the whole story in the log, one line in the report
            lines = [f"**failed**: {type(e).__name__}: {e}"]
        lines.append(f"- peak memory of the section: {_peak(args.device)}")
        report.write("\n".join(lines) + f"\n\n({name}: {time.perf_counter() - start:.1f} s)")
    report.write(f"Done: {len(args.only) - failed} of {len(args.only)} sections finished without error.")
    print(f"gpu_check: report in {args.out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
