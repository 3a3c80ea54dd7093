"""``seq2seq-attn explore RUN_DIR --input FILE --out page.html``: one self-contained HTML page that shows
every attention of a run's model on the user's inputs, for any task (translation, classification, vision,
captioning).

One module per view builds the page data (:mod:`.translation`, :mod:`.classification`, :mod:`.vision`,
:mod:`.captioning`); the
shared template and the weight encoding are in :mod:`.page`, the page scripts in ``static/``.
"""

from __future__ import annotations

from pathlib import Path

from ..training.lifecycle import run_kind
from .page import VIEWS, write_page


def read_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file (one sentence or document each)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input file not found")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: no inputs (one non-empty line each)")
    return lines


def _text_inputs(inputs: list[str | Path], limit: int | None) -> list[str]:
    if len(inputs) != 1:
        raise ValueError("--input: give one text file (one sentence or document a line)")
    return read_lines(inputs[0])[:limit]


def explore(run_dir: str | Path, inputs: list[str | Path], out: str | Path, device: str = "auto",
            which: str = "best", limit: int | None = None, beam: int | None = None, n_best: int = 5,
            ig_steps: int = 20) -> Path:
    """Load the run in ``run_dir``, run it on ``inputs`` (one text file for translation and classification,
    image files or folders for vision and captioning; the first ``limit``) and write the page to ``out``;
    returns ``out``."""
    kind = run_kind(run_dir)
    if kind == "translation":
        from ..translation.lifecycle import load_run
        from .translation import translation_data

        sources = _text_inputs(inputs, limit)
        data = translation_data(load_run(run_dir, device, which), sources, beam, n_best)
    elif kind == "classification":
        from ..classification.lifecycle import load_run as load_classifier
        from .classification import classification_data

        texts = _text_inputs(inputs, limit)
        data = classification_data(load_classifier(run_dir, device, which), texts, ig_steps)
    elif kind == "captioning":
        from ..captioning.lifecycle import load_run as load_captioner
        from .captioning import captioning_data
        from .vision import image_paths

        data = captioning_data(load_captioner(run_dir, device, which), image_paths(inputs)[:limit], beam, n_best)
    else:
        from vision.lifecycle import load_run as load_vision

        from .vision import image_paths, vision_data

        paths = image_paths(inputs)[:limit]
        data = vision_data(load_vision(run_dir, device, which), paths)
    return write_page(out, kind, data, f"{kind}: {run_dir}")


__all__ = ["VIEWS", "explore", "read_lines", "run_kind", "write_page"]
