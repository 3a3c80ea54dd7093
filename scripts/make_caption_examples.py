"""A figure of the built-in captioning sets: a few digit strings (MNIST) and CIFAR-10 mosaics from the test
splits, each with its caption and its words' boxes (``seq2seq_attn.captioning.benchmarks``; the sets are
generated from the shared data, ``$SEQ2SEQ_ATTN_DATA``, and cached as usual).

    python scripts/make_caption_examples.py --out docs/figures/caption_examples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq_attn.captioning.data import load_caption_split
from seq2seq_attn.plotting import save_figure

COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def draw(sets: dict[str, object], per_set: int, out: Path) -> None:
    """One row per set, ``per_set`` images each, boxes drawn in the colour of their word."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(len(sets), per_set, figsize=(2.6 * per_set, 2.0 * len(sets)), squeeze=False)
    for row, (title, s) in enumerate(sets.items()):
        for col in range(per_set):
            ax = axes[row][col]
            img = s.images[col].permute(1, 2, 0).numpy()
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            words, boxes = s.captions[col][0], s.boxes[col][0]
            for k, (x0, y0, x1, y1) in enumerate(boxes):
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2,
                                       edgecolor=COLOURS[k % len(COLOURS)]))
            ax.set_title(" ".join(words), fontsize=7.5)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(title, fontsize=8)
    save_figure(fig, out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/caption_examples.png"))
    parser.add_argument("--per-set", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sets = {name: load_caption_split({"format": fmt, "test_size": args.per_set, "seed": args.seed}, "test")
            for name, fmt in (("digit strings", "digit_strings"), ("CIFAR-10 mosaics", "cifar_mosaics"))}
    draw(sets, args.per_set, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
