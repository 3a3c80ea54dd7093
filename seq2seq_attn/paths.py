"""Where the real datasets live: ``$SEQ2SEQ_ATTN_DATA``, else ``../shared/data`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path | None:
    """The shared dataset folder, or None when it is not available."""
    env = os.environ.get("SEQ2SEQ_ATTN_DATA")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    for candidate in (_REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


def dataset_path(*parts: str) -> Path:
    """Path to a file inside the shared data folder; a clear error when it is missing."""
    root = data_root()
    if root is None:
        raise FileNotFoundError(
            "shared datasets not found: set SEQ2SEQ_ATTN_DATA to the folder holding multi30k/, imdb/, ... "
            "(default ../shared/data beside the checkout)"
        )
    p = root.joinpath(*parts)
    if not p.exists():
        raise FileNotFoundError(f"{p}: not found in the shared data folder {root}")
    return p


def resolve_path(spec: str | Path, what: str = "data file") -> Path:
    """A path from a config or the command line: ``shared:multi30k/train.de.gz`` names a file in the shared data
    folder; anything else is an ordinary path, which must exist (the error names it as ``what``)."""
    spec = str(spec)
    if spec.startswith("shared:"):
        return dataset_path(*spec[len("shared:"):].split("/"))
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path
