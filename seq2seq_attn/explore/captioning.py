"""The captioning view's data: per input image its n-best captions (the translation search, as ``caption
predict``) and, for every word of each caption (and its ``</s>``), the decoder's attention over the encoder's
h x w grid, quantized to one byte a weight (:func:`~.page.quantize`); the page overlays the chosen word's map on
the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .page import quantize
from .vision import png_base64


def captioning_data(run, paths: Sequence[Path], beam: int | None, n_best: int) -> dict:
    """Page data for a :class:`~seq2seq_attn.captioning.lifecycle.CaptionRun` on the image files ``paths``:
    ``images``: ``[{name, png, h, w, hyps: [{words, score, attention}]}]``, each hypothesis's ``attention``
    (len(words), h*w) with ``words`` ending in ``</s>``."""
    from ..captioning.lifecycle import read_image_files

    images = read_image_files(paths, run.inputs)
    h, w = run.grid
    items = []
    for path, image, hyps in zip(paths, images, run.caption(images, beam, n_best)):
        items.append({"name": Path(path).name, "png": png_base64(image), "h": h, "w": w,
                      "hyps": [{"words": [*run.words(x), "</s>"], "score": round(float(x.score), 4),
                                "attention": quantize(x.attention.float().numpy())} for x in hyps]})
    beam_used = max(run.cfg.decoding.beam_size if beam is None else beam, n_best)
    notes = (f"{len(items)} images, beam {beam_used}, {n_best}-best; attention over a {h} x {w} grid "
             f"({run.weights.name}). Hover or click a word to see where the decoder looked.")
    return {"notes": notes, "images": items}
