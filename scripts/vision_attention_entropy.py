"""How spread out is a trained vision model's soft attention? The mean entropy (nats per query row) of every
attention distribution the model records (``capture_attention``) on the first ``--count`` test images, beside the
uniform distribution's ``log n`` (``seq2seq_attn.study.measure.pool_stats``). For the soft-attention RNN: one row
per recurrent step over the feature map's positions. RAM records glimpse locations, not distributions, and is
refused.

    python scripts/vision_attention_entropy.py runs/vision_soft_rnn_mnist_cpu [--count 2000]

Prints one line. Raises ``SystemExit`` with a one-line message when the model records no distribution.
"""

from __future__ import annotations

import argparse
import math

import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.study.measure import pool_stats
from vision.lifecycle import load_run


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--count", type=int, default=2000, help="test images to read (the first N)")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    run = load_run(args.run_dir, args.device)
    images = run.task.test_set.images[:args.count]
    with torch.no_grad(), capture_attention(run.model, cpu=True) as maps:
        for start in range(0, len(images), args.batch):
            run.predict(images[start:start + args.batch])
    keys = max((w.shape[-1] for calls in maps.values() for w in calls), default=0)
    stats = pool_stats(maps, image=True)
    if "entropy" not in stats:
        raise SystemExit(f"{args.run_dir}: the model ({run.cfg.model.arch}) records no attention distribution")
    print(f"{args.run_dir}: {len(images)} test images, attention entropy {stats['entropy']:.3f} nats over {keys} "
          f"positions (uniform: {math.log(keys):.3f}; ratio {stats['entropy_ratio']:.3f})")
    return {"entropy": stats["entropy"], "uniform": math.log(keys), "ratio": stats["entropy_ratio"]}


if __name__ == "__main__":
    main()
