"""The task kinds as the study sees them (classify, translation, vision, captioning): train a cell through
the task's own lifecycle (the one Trainer), read its quality figure, and load its ``Task`` with the trained
model for the measurements.

Nothing here trains or evaluates in its own way: ``train`` is ``<task>/lifecycle.train`` and the quality
figure is what the task's own evaluation wrote or returned (classification, vision and captioning: the test
split's ``test_metrics.json`` written at the end of training (captioning: BLEU, chrF, word accuracy, exact
captions, attention correctness on the built-in sets); translation: ``translation.lifecycle.evaluate`` on the
config's test set, BLEU by sacrebleu).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..training.lifecycle import load_task_config, run_config_path
from .config import task_config_class

#: The torchrun variables; a study shares its cells out by rank, so each cell trains in one process.
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
             "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


@contextmanager
def single_process() -> Iterator[None]:
    """Hide the torchrun variables while a cell trains: the Trainer would otherwise start a process group
    across ranks that train different cells."""
    import os

    saved = {k: os.environ.pop(k) for k in DIST_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _lifecycle(kind: str) -> Any:
    if kind == "classify":
        from ..classification import lifecycle
    elif kind == "translation":
        from ..translation import lifecycle
    elif kind == "captioning":
        from ..captioning import lifecycle
    else:
        from vision import lifecycle
    return lifecycle


def train(kind: str, config: str, overrides: dict, resume: bool, overwrite: bool, device: str) -> int:
    """Train one cell with ``<task>/lifecycle.train`` (``overrides`` include ``training.run_dir``); returns
    the Trainer's exit code."""
    with single_process():
        return int(_lifecycle(kind).train(config, overrides, resume=resume, overwrite=overwrite, device=device))


def quality(kind: str, run_dir: Path, device: str) -> dict[str, float]:
    """The cell's test figures: classification (accuracy, macro_f1, loss), vision (acc, loss) and captioning
    (bleu, chrf, word_acc, exact, attn_correctness, loss, ppl) from the ``test_metrics.json`` its training
    wrote; translation: BLEU and chrF of the best weights on the config's ``data.test``
    (beam from its ``decoding`` section). Raises ``ValueError`` when there is no test split."""
    if kind in ("classify", "vision", "captioning"):
        path = run_dir / "test_metrics.json"
        if not path.is_file():
            raise ValueError(f"{run_dir}: no test_metrics.json (a {kind} task needs a test split)")
        metrics = json.loads(path.read_text(encoding="utf-8"))
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    from ..translation.lifecycle import evaluate, load_run

    run = load_run(run_dir, device, "best")
    test = run.cfg.data.test
    if test is None or test.src is None:
        raise ValueError(f"{run_dir}: the translation config has no data.test.src/tgt to score")
    scores = evaluate(run, test.src, test.tgt, out=io.StringIO())
    return {s.name.lower(): float(s.value) for s in scores}


def load_task(kind: str, run_dir: Path, device: str) -> tuple[Any, nn.Module]:
    """The cell's ``Task`` (its data read again, vocabularies from the run dir) and its model with the best
    weights, in eval mode on ``device``."""
    from ..training.lifecycle import load_weights_for_inference

    cls = task_config_class(kind)
    cfg = load_task_config(cls, run_config_path(run_dir))
    if kind == "classify":
        from ..classification.task import ClassificationData, ClassificationTask

        task: Any = ClassificationTask(cfg, ClassificationData(cfg, run_dir, resume=True), resume=True)
    elif kind == "translation":
        from ..translation.task import TranslationTask

        task = TranslationTask(cfg, run_dir, log=lambda _: None, resume=True)
    elif kind == "captioning":
        task = _caption_task(cfg, run_dir)
    else:
        from vision.task import VisionTask

        task = VisionTask(cfg)
    model, _, _ = load_weights_for_inference(task.build_model(), run_dir, "best", device)
    return task, model


def _caption_task(cfg: Any, run_dir: Path) -> Any:
    """The captioning task of a run: its images read again; the vocabulary built from them must be the
    run's ``vocab.json`` (``ValueError`` naming it otherwise: the data changed since the cell trained)."""
    from ..captioning.task import CaptionTask, load_caption_vocab

    task = CaptionTask(cfg, log=lambda _: None)
    if task.vocab.itos != load_caption_vocab(run_dir).itos:
        raise ValueError(f"{run_dir / 'vocab.json'}: differs from the vocabulary of the data read again")
    return task


def feature_grid(kind: str, task: Any, model: nn.Module) -> tuple[int, int] | None:
    """(h, w) of the positions a captioning model attends over (its encoder's feature map), else None."""
    if kind != "captioning":
        return None
    return tuple(model.encoder.grid(task.inputs.height, task.inputs.width))


def batches(task: Any, count: int, device: torch.device) -> list[Any]:
    """The first ``count`` batches of the task's epoch-0 training order, collated and on ``device``."""
    from ..training.runtime import move_to_device

    order = task.train_batches(0)
    return [move_to_device(task.collate(indices), device) for indices in list(order)[:count]]
