"""Does a trained RAM look at the digit? Per glimpse, the median distance (pixels) from the glimpse centre to
the digit and the share of glimpses within ``--radius`` pixels of it, beside the same for a glimpse fixed at the
image centre. Where the digit is: for a run on one of the placed MNIST variants (translated, cluttered, ...), the
centre of the digit's own ink, known from the generator (:func:`vision.mnist_variants.digit_centres`), so clutter
does not move it; for other data, the image's ink centre (meaningful for one object on a black canvas).

Beside each glimpse it also asks whether the model *knows* where the digit is: a linear read-out (least squares,
with a bias) from the recurrent state after that glimpse to the digit's centre, fitted on the first half of the images
and measured on the second (median distance, px), against the read-out that always guesses the mean centre. A
state that locates the digit while the next glimpse still misses it means the location network has not learned
to use what the state holds. The last column is the correlation, over the images, between where the glimpse
lands and where the digit is (x and y): 0 for a glimpse that ignores the digit, 1 for one that follows it.

    python scripts/ram_glimpse_check.py runs/vision_ram_translated_cpu [--count 2000] [--radius 6]

Prints a Markdown table. Raises ``SystemExit`` with a one-line message when the run is not a RAM.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.paths import resolve_path
from vision.glimpse import ink_centre, ink_centre_distance, pixel_centre
from vision.lifecycle import VisionRun, load_run
from vision.mnist_variants import VARIANTS, digit_centres, split_seed
from vision.models.ram import RecurrentAttentionModel


def linear_readout_distance(features: torch.Tensor, targets: torch.Tensor, fit: int) -> torch.Tensor:
    """Fit ``targets ≈ [features, 1] W`` by least squares (pseudo-inverse) on the first ``fit`` rows and return the
    distances (B - fit,) between the read-out and the targets on the other rows. features (B, D), targets (B, 2)
    in pixels. Raises ``ValueError`` unless ``0 < fit < B``."""
    if not 0 < fit < len(features):
        raise ValueError(f"fit must be between 1 and {len(features) - 1} rows, got {fit}")
    x = torch.cat([features.double(), features.new_ones(len(features), 1).double()], 1)  # (B, D + 1)
    w = torch.linalg.pinv(x[:fit]) @ targets[:fit].double()  # (D + 1, 2)
    return (x[fit:] @ w - targets[fit:].double()).norm(dim=-1).float()


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson's correlation of two (B,) series (``torch.corrcoef``); 0.0 when either is constant (a glimpse that
    never moves)."""
    if float(a.double().std()) == 0.0 or float(b.double().std()) == 0.0:
        return 0.0
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def digit_centres_of(run: VisionRun, images: torch.Tensor) -> torch.Tensor | None:
    """Where each test digit really is, ``(col, row)`` pixels (B, 2), for a run on one of the placed MNIST variants
    of an ``.npz`` (:func:`vision.mnist_variants.digit_centres`: the centre of the digit's own ink, which clutter
    does not pull); ``None`` for any other data, or when the remade test images differ from ``images``."""
    d = run.cfg.data
    if d.source != "npz" or d.variant not in VARIANTS or d.max_test is not None:
        return None
    with np.load(resolve_path(d.path), allow_pickle=False) as data:
        digits = data["x_test"]  # the whole split: the clutter of an image depends on the others
    remade, centres = digit_centres(digits, d.variant, split_seed(d.variant_seed, "test"))
    if not np.array_equal(remade[:len(images)], images[:, 0].numpy()):
        return None
    return torch.from_numpy(centres[:len(images)]).float()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--count", type=int, default=2000, help="test images to read (the first N)")
    parser.add_argument("--radius", type=float, default=6.0, help="pixels: a glimpse this close is on target")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    run = load_run(args.run_dir, args.device, overrides={"model.recurrent.eval_samples": 0})  # the mean path
    if not isinstance(run.model, RecurrentAttentionModel):
        raise SystemExit(f"{args.run_dir}: not a RAM run (model.arch: {run.cfg.model.arch})")
    test = run.task.test_set
    images = test.images[:args.count]
    states: list[torch.Tensor] = []  # the core's h after each glimpse (one forward pass: G calls, in order)
    hook = run.model.core.register_forward_hook(lambda _m, _i, out: states.append(out[0].detach().float().cpu()))
    with torch.no_grad(), capture_attention(run.model) as maps:
        probs = run.predict(images)
    hook.remove()
    locations = maps[""][0].cpu().float()  # (B, G, 2) in [-1, 1]
    target = digit_centres_of(run, images)  # (B, 2) px: the digit itself, when the images are a known variant
    reference = "the digit's own ink centre" if target is not None else "the image's ink centre"
    target = ink_centre(images) if target is None else target
    distance = ink_centre_distance(images, locations, target)  # (B, G)
    half = len(images) // 2
    readout = [linear_readout_distance(h, target, half) for h in states]  # G x (B - half,)
    guess = (target[half:] - target[:half].mean(0)).norm(dim=-1)  # the mean centre of the fitting half
    looked = pixel_centre(locations, *images.shape[-2:])  # (B, G, 2) px
    centre = ink_centre_distance(images, torch.zeros(len(images), 1, 2), target)[:, 0]  # fixed at the centre
    error = 100.0 * float((probs.argmax(-1) != test.labels[:args.count]).float().mean())
    print(f"{args.run_dir}: {len(images)} test images, error {error:.2f} %, radius {args.radius:g} px, "
          f"distances to {reference}\n")
    print(f"| glimpse | median distance (px) | within {args.radius:g} px | linear read-out of the state after it (px) "
          "| correlation with the digit's x, y |\n| --- | ---: | ---: | ---: | ---: |")
    for t in range(distance.shape[1]):
        d = distance[:, t]
        corr = [correlation(looked[:, t, a], target[:, a]) for a in range(2)]
        print(f"| {t + 1} | {float(d.median()):.1f} | {100 * float((d < args.radius).float().mean()):.0f} % | "
              f"{float(readout[t].median()):.1f} | {corr[0]:.2f}, {corr[1]:.2f} |")
    print(f"| fixed at the centre | {float(centre.median()):.1f} | "
          f"{100 * float((centre < args.radius).float().mean()):.0f} % | (guessing the mean centre: "
          f"{float(guess.median()):.1f}) | 0 |")


if __name__ == "__main__":
    main()
