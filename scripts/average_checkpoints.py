#!/usr/bin/env python
"""Average the weights of a run's last N checkpoints (or of given files) into one safetensors file.

    python scripts/average_checkpoints.py runs/de-en -n 5 -o runs/de-en/averaged.safetensors
    python scripts/average_checkpoints.py a.safetensors b.safetensors -o avg.safetensors

Floating-point tensors are averaged in float64 and stored in their own dtype; integer buffers are taken
from the newest file. Load the result with ``seq2seq_attn.training.load_weights(model, PATH)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seq2seq_attn.training.checkpoint import CheckpointError, average_weights, list_checkpoints, save_weights


def select(sources: list[Path], last: int) -> list[Path]:
    """A single run dir gives its newest ``last`` checkpoints; otherwise the files as given."""
    if len(sources) == 1 and sources[0].is_dir():
        pairs = list_checkpoints(sources[0])
        if not pairs:
            raise FileNotFoundError(f"{sources[0]}: no checkpoints (expected checkpoints/step-*.safetensors)")
        if len(pairs) < last:
            print(f"note: only {len(pairs)} checkpoints in {sources[0]}, averaging all", file=sys.stderr)
        return [w for _, w, _ in pairs[-last:]]
    for s in sources:
        if not s.is_file():
            raise FileNotFoundError(f"{s}: not a checkpoint file")
    return sources


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="+", type=Path, help="a run dir, or weight files (.safetensors)")
    p.add_argument("-n", "--last", type=int, default=5, help="with a run dir: how many of its newest checkpoints")
    p.add_argument("-o", "--output", type=Path, required=True, help="the averaged .safetensors to write")
    args = p.parse_args(argv)
    if args.last < 1:
        p.error("--last must be >= 1")
    try:
        paths = select(args.sources, args.last)
        averaged = average_weights(paths)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"average_checkpoints: error: {e}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_weights(averaged, args.output, {"averaged_from": ",".join(p.name for p in paths)})
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
