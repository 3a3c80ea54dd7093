"""Forward FLOPs per image of the recurrent attention model (RAM) against the CNN baseline and the soft-attention
recurrent model as the image grows (60×60 -> 100×100 -> 200×200; 28×28 for reference): RAM's cost is set by
its glimpses, the others' by the pixels (Mnih et al., 2014, section 1). No training: the models are built from
the configs and counted with ``torch.utils.flop_counter`` (``vision.benchmark.count_flops``: matrix products and
convolutions; a multiply-add counts 2; the sensor's bilinear sampling is not counted).

    python scripts/bench_ram_flops.py --out docs/figures/ram_flops.png   # prints a Markdown table
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from seq2seq_attn.config import load_config
from vision.benchmark import count_flops, count_parameters
from vision.config import VisionConfig
from vision.task import build_model

ROOT = Path(__file__).resolve().parent.parent
MODELS = {  # row name -> config (the models trained on the MNIST variants)
    "RAM (8 glimpses, 3 scales of 12×12)": "configs/vision_ram_translated_cpu.yaml",
    "soft-attention RNN (CNN 32/64, 6 steps)": "configs/vision_soft_rnn_mnist_cpu.yaml",
    "CNN (small ResNet 24/48/96)": "configs/vision_cnn_mnist_variants_cpu.yaml",
}


def measure(sizes: list[int]) -> dict[str, tuple[int, list[int]]]:
    """Row name -> (parameters, forward FLOPs per image at each size)."""
    torch.manual_seed(0)
    rows = {}
    for name, path in MODELS.items():
        cfg = load_config(VisionConfig, ROOT / path)
        model = build_model(cfg.model, 10, 1)
        rows[name] = (count_parameters(model), [count_flops(model, torch.rand(2, 1, s, s)) // 2 for s in sizes])
    return rows


def plot(rows: dict[str, tuple[int, list[int]]], sizes: list[int], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, (_, flops) in rows.items():
        ax.plot([s * s for s in sizes], [f / 1e6 for f in flops], "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([s * s for s in sizes], [f"{s}×{s}" for s in sizes])
    ax.set_xlabel("image size (pixels, log scale)")
    ax.set_ylabel("forward MFLOPs per image")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[28, 60, 100, 200])
    parser.add_argument("--out", type=Path, help="PNG of FLOPs against image size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = measure(args.sizes)
    print("| model | parameters | " + " | ".join(f"{s}×{s}" for s in args.sizes) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in args.sizes) + " |")
    for name, (params, flops) in rows.items():
        print(f"| {name} | {params:,} | " + " | ".join(f"{f / 1e6:.2f} M" for f in flops) + " |")
    if args.out is not None:
        plot(rows, args.sizes, args.out)
        print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
