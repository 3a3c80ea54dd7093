"""Forward+backward time of our MultiHeadAttention (fast path) against torch.nn.MultiheadAttention.

Both modules get the same weights and inputs; their steps alternate in one run (A B A B ...) so machine noise
hits both alike, and the ratio of medians (ours / PyTorch's) is reported per sequence length.

    python scripts/bench_attention.py                      # CPU, batch 32, heads 8, d 512, seq 64 256 1024
    python scripts/bench_attention.py --device cuda --dtype bf16
    python scripts/bench_attention.py --markdown docs/benchmarks.md   # append the table
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys

import torch

from seq2seq_attn.attention import MultiHeadAttention
from seq2seq_attn.timing import alternating_medians

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def time_pair(batch: int, seq: int, dim: int, heads: int, device: torch.device, dtype: torch.dtype,
              reps: int, warmup: int) -> tuple[float, float]:
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(dim, heads, batch_first=True).to(device, dtype)
    ours = MultiHeadAttention(dim, heads).to(device, dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(batch, seq, dim, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(batch, seq, dim, device=device, dtype=dtype)

    def step_ours():
        out, _ = ours(x, x, x)
        out.backward(grad)

    def step_ref():
        out, _ = ref(x, x, x, need_weights=False)
        out.backward(grad)

    t = alternating_medians({"ours": step_ours, "torch": step_ref}, device, reps, warmup)
    return t["ours"], t["torch"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seqs", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--markdown", help="append the result table to this Markdown file")
    args = p.parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]

    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads")
    rows = []
    for seq in args.seqs:
        reps = args.reps if seq < 1024 or device.type == "cuda" else max(4, args.reps // 2)
        t_ours, t_ref = time_pair(args.batch, seq, args.dim, args.heads, device, dtype, reps, args.warmup)
        rows.append((seq, t_ours * 1e3, t_ref * 1e3, t_ours / t_ref))
        print(f"seq {seq:5d}: ours {t_ours * 1e3:9.2f} ms  torch {t_ref * 1e3:9.2f} ms  ratio {t_ours / t_ref:.3f}",
              flush=True)

    cmd = "python scripts/bench_attention.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = [
        f"\n## MultiHeadAttention forward+backward vs torch.nn.MultiheadAttention ({device.type}, {args.dtype})\n",
        f"- command: `{cmd.strip()}`",
        f"- machine: {machine}; torch {torch.__version__}",
        f"- date: {datetime.date.today().isoformat()}",
        f"- batch {args.batch}, heads {args.heads}, d {args.dim}, self-attention, median of alternating steps\n",
        "| seq | ours (ms) | torch (ms) | ratio ours/torch |",
        "| ---: | ---: | ---: | ---: |",
    ]
    table += [f"| {s} | {a:.2f} | {b:.2f} | {r:.3f} |" for s, a, b, r in rows]
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
