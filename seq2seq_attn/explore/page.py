"""The shared page of ``seq2seq-attn explore``: one self-contained HTML file (data as inline JSON, CSS and a
small plain script inline, nothing fetched), and the compact encodings the views use for their weights.

Safety: user text only ever reaches the document through ``textContent`` (the scripts in ``static/`` build
every element with ``el(tag, cls, text)``), and the inline JSON has ``<``, ``>``, ``&`` and the line separators
escaped as ``\\uXXXX``, so an input holding ``</script>`` cannot end the data block.

Weights are quantized to one byte: ``q = round(255 * w / scale)`` with ``scale`` 1 for attention weights
(which lie in [0, 1]) or the map's maximum where stated; the page decodes ``w = q / 255 * scale``. The error
is at most ``scale / 510`` per weight.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

VIEWS = ("translation", "classification", "vision", "captioning", "study")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def quantize(weights: np.ndarray, scale: float = 1.0) -> str:
    """Weights in [0, scale] -> base64 of one uint8 per weight (row-major, C order); values outside the
    range are clipped. The page reads them back with ``decodeU8`` (``w = q / 255 * scale``)."""
    if scale <= 0:
        scale = 1.0
    q = np.clip(np.rint(np.asarray(weights, dtype=np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
    return base64.b64encode(np.ascontiguousarray(q).tobytes()).decode("ascii")


def dequantize(text: str, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Inverse of :func:`quantize` (for tests and readers of the page data)."""
    q = np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)
    return q.astype(np.float32) * (scale / 255.0)


def rounded(values, digits: int = 4) -> list[float]:
    """Plain floats rounded to ``digits`` decimals (smaller JSON for per-token scores)."""
    return [round(float(v), digits) for v in np.asarray(values, dtype=np.float64).ravel()]


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def render_page(view: str, data: dict, title: str) -> str:
    """The whole HTML document for ``view`` (one of :data:`VIEWS`) showing ``data``."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    payload = {"view": view, "title": title, **data}
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>seq2seq-attn explore</title>\n"
            f"<style>\n{_static('page.css')}</style>\n</head>\n<body>\n"
            "<header><h1 id=\"title\"></h1><p id=\"notes\"></p></header>\n<main id=\"app\"></main>\n"
            f"<script id=\"data\" type=\"application/json\">{script_json(payload)}</script>\n"
            f"<script>\n{_static('common.js')}\n{_static(view + '.js')}\n</script>\n</body>\n</html>\n")


def write_page(path: str | Path, view: str, data: dict, title: str) -> Path:
    """Write the page atomically (a temporary file in the same folder, then renamed over ``path``), so a
    failure never leaves a half-written page in place of a good one. Returns ``path``."""
    path = Path(path)
    text = render_page(view, data, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a page is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
