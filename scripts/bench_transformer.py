"""Speed of the Transformer, side by side (ratios measured in one run).

Three measurements (pick with ``--only``):

- ``step``: one training step (forward, label-smoothed loss, backward, Adam) of our ``TransformerSeq2Seq``
  against the same model built on ``torch.nn.Transformer`` (equal dimensions, same embeddings, output layer,
  batch and dropout). Steps alternate (A B B A ...) so machine noise hits both alike; ratio of medians
  (ours / torch). On CUDA with ``--dtype bf16`` both run under bf16 autocast.
- ``mfu``: model FLOPs utilization of a Transformer-base training step (d 512, 6+6 layers, FFN 2048, 8 heads)
  against the measured matmul peak of the device in the same dtype (a large square matmul). FLOPs are
  counted analytically (matmuls only, full attention, backward = 2 x forward); meant for a GPU with bf16.
- ``beam``: beam search (beam 5) over the test2016 sources with a trained run dir: sentences/s with the
  key/value cache against the reference decoder that re-runs the whole prefix each step (same search code);
  also checks that both give the same translations.

    python scripts/bench_transformer.py --only step                        # CPU, fp32
    python scripts/bench_transformer.py --device cuda --dtype bf16         # GPU: step + MFU (+ beam with --run)
    python scripts/bench_transformer.py --only beam --run runs/multi30k_transformer_cpu --limit 200
    ... --markdown docs/benchmarks.md                                      # append the results
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.timing import alternating_medians, timed
from seq2seq_attn.translation.models.transformer import TransformerSeq2Seq
from seq2seq_attn.translation.transformer_config import TransformerConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


class TorchTransformerSeq2Seq(nn.Module):
    """The baseline: ``torch.nn.Transformer`` between our model's own embedding and output layers."""

    def __init__(self, ours: TransformerSeq2Seq) -> None:
        super().__init__()
        cfg = ours.config
        self.embed = ours  # shares the embeddings, positions and output layer (same cost on both sides)
        self.transformer = nn.Transformer(
            cfg.d_model, cfg.heads, cfg.encoder_layers, cfg.decoder_layers, cfg.ffn_dim, cfg.dropout,
            activation=cfg.activation, layer_norm_eps=cfg.layer_norm_eps, batch_first=True,
            norm_first=cfg.norm_first)

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        m = self.embed
        x = m._embed(m.src_embed, src)  # (B, S, D)
        y = m._embed(m.tgt_embed, tgt_in)  # (B, T, D)
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), device=src.device, dtype=x.dtype)
        h = self.transformer(x, y, tgt_mask=causal, src_key_padding_mask=src_pad_mask,
                             memory_key_padding_mask=src_pad_mask, tgt_is_causal=True)
        return m.output_projection(h)


def _batch(batch: int, src_len: int, tgt_len: int, vocab: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, vocab, (batch, src_len), generator=g)
    lengths = torch.randint(src_len // 2, src_len + 1, (batch,), generator=g)
    pad = torch.arange(src_len).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, S) realistic padding
    tgt = torch.randint(4, vocab, (batch, tgt_len + 1), generator=g)
    return src.masked_fill(pad, 0).to(device), pad.to(device), tgt[:, :-1].to(device), tgt[:, 1:].to(device)


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, batch, autocast: torch.dtype | None) -> None:
    src, pad, tgt_in, tgt_out = batch
    with torch.autocast(src.device.type, dtype=autocast, enabled=autocast is not None):
        logits = model(src, pad, tgt_in)  # (B, T, V)
    loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), label_smoothing=0.1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench_step(args, device: torch.device, autocast: torch.dtype | None) -> list[str]:
    cfg = TransformerConfig(d_model=args.d_model, heads=args.heads, encoder_layers=args.layers,
                            decoder_layers=args.layers, ffn_dim=args.ffn, dropout=0.1, norm_first=args.norm_first,
                            final_norm=True)  # torch.nn.Transformer always ends both stacks with a LayerNorm
    torch.manual_seed(0)
    ours = TransformerSeq2Seq(args.vocab, args.vocab, cfg).to(device)
    ref_inner = TransformerSeq2Seq(args.vocab, args.vocab, cfg).to(device)
    ref = TorchTransformerSeq2Seq(ref_inner).to(device)
    # Drop the baseline's unused copies of our layers so that Adam updates the same number of parameters.
    ref_inner.encoder_layers, ref_inner.decoder_layers = nn.ModuleList(), nn.ModuleList()
    ref_inner.encoder_norm, ref_inner.decoder_norm = nn.Identity(), nn.Identity()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    batch = _batch(args.batch, args.src_len, args.tgt_len, args.vocab, device)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-4)
    ours.train(), ref.train()
    t = alternating_medians({"ours": lambda: _train_step(ours, opt_ours, batch, autocast),
                           "torch": lambda: _train_step(ref, opt_ref, batch, autocast)},
                          device, args.reps, args.warmup)
    tokens = args.batch * (args.src_len + args.tgt_len)
    line = (f"| d {args.d_model}, {args.layers}+{args.layers} layers, FFN {args.ffn}, {args.heads} heads, "
            f"{'pre' if args.norm_first else 'post'}-LN, V {args.vocab}, batch {args.batch}x{args.src_len}/"
            f"{args.tgt_len} | {args.dtype} | {t['ours'] * 1e3:.1f} | {t['torch'] * 1e3:.1f} | "
            f"**{t['ours'] / t['torch']:.3f}** | {tokens / t['ours']:.0f} |")
    if n_ours != n_ref:
        raise RuntimeError(f"the models differ: {n_ours:,} parameters (ours) against {n_ref:,} (torch)")
    header = ["| model, batch (sentences x src/tgt tokens) | dtype | ours ms/step | torch.nn.Transformer ms/step | "
              "ratio ours/torch | ours tok/s |", "|---|---|---|---|---|---|"]
    return [*header, line]


def transformer_flops(batch: int, src_len: int, tgt_len: int, d: int, ffn: int, enc: int, dec: int,
                      vocab: int) -> float:
    """Matmul FLOPs of one training step (forward x 3), full (unmasked) attention, padded shapes."""
    s, t = batch * src_len, batch * tgt_len  # source and target tokens
    enc_layer = s * (8 * d * d + 4 * d * ffn) + batch * 4 * src_len * src_len * d
    dec_layer = (t * (8 * d * d + 4 * d * ffn) + batch * 4 * tgt_len * tgt_len * d  # self-attention, FFN
                 + t * 4 * d * d + s * 4 * d * d + batch * 4 * tgt_len * src_len * d)  # cross-attention
    forward = enc * enc_layer + dec * dec_layer + t * 2 * d * vocab
    return 3.0 * forward


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, reps: int = 20) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    def matmuls() -> None:
        for _ in range(reps):
            a @ b

    _, seconds = timed(matmuls, device)
    return 2 * n ** 3 * reps / seconds


def bench_mfu(args, device: torch.device, autocast: torch.dtype | None) -> list[str]:
    d, ffn, layers, heads = 512, 2048, 6, 8
    cfg = TransformerConfig(d_model=d, heads=heads, encoder_layers=layers, decoder_layers=layers, ffn_dim=ffn,
                            dropout=0.1)
    torch.manual_seed(0)
    model = TransformerSeq2Seq(args.mfu_vocab, args.mfu_vocab, cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    batch = _batch(args.mfu_batch, args.mfu_len, args.mfu_len, args.mfu_vocab, device)
    step = torch.compile(_train_step) if args.compile else _train_step
    t = alternating_medians({"step": lambda: step(model, opt, batch, autocast)}, device, args.reps, args.warmup)
    flops = transformer_flops(args.mfu_batch, args.mfu_len, args.mfu_len, d, ffn, layers, layers, args.mfu_vocab)
    peak = matmul_peak(device, DTYPES[args.dtype], args.peak_n)
    achieved = flops / t["step"]
    return ["| model, batch | dtype | step ms | model TFLOP/step | achieved TFLOP/s | matmul peak TFLOP/s | MFU |",
            "|---|---|---|---|---|---|---|",
            f"| Transformer-base (d 512, 6+6, FFN 2048, V {args.mfu_vocab}), {args.mfu_batch}x{args.mfu_len}/"
            f"{args.mfu_len}{' compiled' if args.compile else ''} | {args.dtype} | {t['step'] * 1e3:.1f} | "
            f"{flops / 1e12:.3f} | {achieved / 1e12:.1f} | {peak / 1e12:.1f} | **{100 * achieved / peak:.1f}%** |"]


def bench_beam(args, device: torch.device) -> list[str]:
    from seq2seq_attn.translation.corpus import read_parallel
    from seq2seq_attn.translation.lifecycle import load_run
    from seq2seq_attn.translation.task import translate_ids

    run = load_run(args.run, str(device))
    src_path = Path(args.src)
    sources, _ = read_parallel(src_path, src_path)
    sources = sources[: args.limit] if args.limit else sources
    src_ids = run.vocabs.encode_src(sources)
    results, seconds = {}, {}
    for use_cache in (True, False):
        run.model.use_cache = use_cache
        with torch.autocast(device.type, dtype=DTYPES[args.dtype], enabled=args.dtype != "fp32"):
            hyps, seconds[use_cache] = timed(
                lambda: translate_ids(run.model, src_ids, device, run.cfg, beam_size=args.beam), device)
        results[use_cache] = [h[0].tokens for h in hyps]
    same = sum(a == b for a, b in zip(results[True], results[False]))
    n = len(sources)
    return ["| run, sentences | beam | dtype | with cache sent/s | without cache sent/s | speed-up | same output |",
            "|---|---|---|---|---|---|---|",
            f"| `{args.run}`, {n} of {src_path.name} | {args.beam} | {args.dtype} | {n / seconds[True]:.1f} | "
            f"{n / seconds[False]:.1f} | **{seconds[False] / seconds[True]:.2f}x** | {same}/{n} |"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["step", "mfu", "beam"], action="append",
                   help="which measurements (repeatable); default: step, plus mfu on CUDA, plus beam with --run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default=None, help="default: fp32 on CPU, bf16 on CUDA")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    # step-time model and batch
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--norm-first", action="store_true")
    p.add_argument("--vocab", type=int, default=6000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--src-len", type=int, default=24)
    p.add_argument("--tgt-len", type=int, default=24)
    # MFU
    p.add_argument("--mfu-batch", type=int, default=128)
    p.add_argument("--mfu-len", type=int, default=128)
    p.add_argument("--mfu-vocab", type=int, default=32000)
    p.add_argument("--peak-n", type=int, default=8192, help="matmul size for the measured peak")
    p.add_argument("--compile", action="store_true", help="MFU: torch.compile the training step")
    # beam
    p.add_argument("--run", default=None, help="trained run dir for the beam benchmark")
    p.add_argument("--src", default=None, help="source sentences (default: the shared test2016 German side)")
    p.add_argument("--limit", type=int, default=None, help="first N sentences only")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--markdown", type=Path, default=None, help="append the tables to this file")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    args.dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    autocast = None if args.dtype == "fp32" else DTYPES[args.dtype]
    if args.threads:
        torch.set_num_threads(args.threads)
    only = args.only or ["step", *(["mfu"] if device.type == "cuda" else []), *(["beam"] if args.run else [])]
    if "beam" in only:
        if not args.run:
            p.error("--only beam needs --run RUN_DIR (a trained Transformer run)")
        if args.src is None:
            from seq2seq_attn.paths import dataset_path

            args.src = str(dataset_path("multi30k", "test_2016_flickr.de.gz"))

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [f"### Transformer ({', '.join(only)}): {_machine(device)}, torch {torch.__version__}, {date}", "",
             f"Command: `python scripts/bench_transformer.py {' '.join(sys.argv[1:] if argv is None else argv)}`", ""]
    for what in only:
        t0 = time.perf_counter()
        table = {"step": lambda: bench_step(args, device, autocast), "mfu": lambda: bench_mfu(args, device, autocast),
                 "beam": lambda: bench_beam(args, device)}[what]()
        lines += [*table, ""]
        print("\n".join(table), f"\n({what}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
