"""Where the real datasets live: ``$SEQ2SEQ_ATTN_DATA``, else ``../shared/data`` beside the checkout; and
Hugging Face ``datasets`` imported in offline mode (:func:`offline_datasets`), for every task alike."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

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


#: Environment variables of Hugging Face's offline mode (``datasets`` and ``huggingface_hub``).
HF_OFFLINE_VARIABLES = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


def offline_datasets() -> ModuleType:
    """The ``datasets`` module in offline mode: this project never downloads (it runs without network), so
    ``datasets.load_dataset`` reads local files (``json``/``csv``/... builders with ``data_files``, folders of
    ``save_to_disk``) and the local cache only, and a name that is not there fails at once instead of waiting
    on the network. Every task loads Hugging Face data through this function.

    ``HF_DATASETS_OFFLINE`` and ``HF_HUB_OFFLINE`` are set to ``1`` unless the environment sets them already
    (``HF_DATASETS_OFFLINE=0`` allows downloads again). Both libraries read them once, at import; when
    ``datasets`` was imported before (by the caller or a test), their module-level switches are set to match.
    """
    for name in HF_OFFLINE_VARIABLES:
        os.environ.setdefault(name, "1")
    import datasets
    import huggingface_hub.constants as hub

    offline = os.environ["HF_DATASETS_OFFLINE"].upper() in datasets.config.ENV_VARS_TRUE_VALUES
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = offline
    hub.HF_HUB_OFFLINE = os.environ["HF_HUB_OFFLINE"].upper() in datasets.config.ENV_VARS_TRUE_VALUES
    return datasets
