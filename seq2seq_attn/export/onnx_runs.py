"""``export RUN_DIR --format onnx OUT`` for classify and vision runs: the graph (see :mod:`.onnx_export`), the
files needed to prepare its inputs, and a check of onnxruntime against PyTorch on sample inputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import load_config
from ..training.lifecycle import run_kind
from .files import atomic_output_dir
from .onnx_export import ONNX_FILE, ClassifierGraph, VisionGraph, classifier_io, export_graph, max_difference

TOLERANCE = 1e-4


@dataclass
class OnnxExport:
    path: Path  # the output directory
    kind: str  # "classifier" or "vision"
    max_abs_diff: float  # onnxruntime vs PyTorch on the check inputs
    check_inputs: str  # what they were


def _classifier_batches(run, texts: list[str] | None, seed: int = 0) -> tuple[list[tuple[torch.Tensor, ...]], str]:
    """Two padded batches of check inputs: the documents of ``texts``, else random ids of varied lengths."""
    from ..classification.task import collate_docs
    from ..classification.text import EncodedDoc

    if texts:
        docs = run.encode(texts)
        what = f"{len(docs)} documents"
    else:
        g = np.random.default_rng(seed)
        docs = []
        for n in g.integers(1, 40, size=8):
            sents = np.array_split(np.arange(n), max(1, n // 7))
            docs.append(EncodedDoc(g.integers(3, len(run.vocab), size=n).astype(np.int32),
                                   np.asarray([len(s) for s in sents], dtype=np.int32), []))
        what = "8 random-id documents"
    half = max(1, len(docs) // 2)
    batches = []
    for part in (docs[:half], docs[half:]):
        if part:
            b = collate_docs(part, run.hierarchical)
            batches.append((b["tokens"], b["sentence_lengths" if run.hierarchical else "lengths"]))
    return batches, what


def _export_classifier(run_dir: Path, tmp: Path, which: str, texts: list[str] | None) -> tuple[float, str]:
    from ..classification.lifecycle import load_run

    run = load_run(run_dir, "cpu", which)
    graph = ClassifierGraph(run.model, run.hierarchical).eval()
    batches, what = _classifier_batches(run, texts)
    inputs, outputs, axes = classifier_io(run.hierarchical)
    export_graph(graph, batches[0], tmp / ONNX_FILE, inputs, outputs, axes)
    _copy_run_files(run_dir, tmp, ("config.yaml", "labels.json", "vocab.json", "spm.model"))
    reference = ClassifierGraph(run.model, run.hierarchical, trace=False)
    return max_difference(tmp / ONNX_FILE, reference, batches, inputs), what


def _copy_run_files(run_dir: Path, out: Path, names: tuple[str, ...]) -> None:
    """Copy the files of ``names`` that ``run_dir`` holds (what prepares the model's inputs) to ``out``."""
    for name in names:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)


def load_vision_model(run_dir: Path, which: str = "best") -> tuple[object, nn.Module]:
    """A vision run's config and model (classes and channels read from the weights) in eval mode."""
    from vision.config import VisionConfig
    from vision.task import build_model

    from ..training.checkpoint import load_weights, read_weights, resolve_weights

    cfg = load_config(VisionConfig, run_dir / "config.yaml")
    state = read_weights(resolve_weights(run_dir, which))
    if "fc.weight" not in state or "stem.0.weight" not in state:
        raise ValueError(f"{run_dir}: weights do not look like a vision ResNet (no fc.weight / stem.0.weight)")
    model = build_model(cfg.model, state["fc.weight"].shape[0], state["stem.0.weight"].shape[1])
    load_weights(model, run_dir, which)
    return cfg, model.eval()


def _vision_images(cfg, channels: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """Up to 16 test images of the run's dataset, normalized; random images when the data are not here."""
    try:
        from vision.data import Normalize, channel_stats
        from vision.task import load_split

        images = load_split(cfg.data, "test").images[:16]
        mean, std = (cfg.data.mean, cfg.data.std) if cfg.data.mean is not None else channel_stats(images)
        return Normalize(mean, std)(images), f"{len(images)} test images of {cfg.data.path}"
    except (OSError, ValueError, ImportError):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(8, channels, 32, 32, generator=g), "8 random 32x32 images (the run's data not found)"


def _export_vision(run_dir: Path, tmp: Path, which: str) -> tuple[float, str]:
    cfg, model = load_vision_model(run_dir, which)
    channels = model.get_parameter("stem.0.weight").shape[1]
    images, what = _vision_images(cfg, channels)
    graph = VisionGraph(model)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}}
    try:
        export_graph(graph, (images[:2],), tmp / ONNX_FILE, ["images"], ["logits", "probabilities"], axes)
    except torch.onnx.errors.OnnxExporterError:
        # Adaptive pooling to a size other than 1 (FcaNet, SPA, ANL) needs a known input size: fix H and W.
        del axes["images"][2], axes["images"][3]
        export_graph(graph, (images[:2],), tmp / ONNX_FILE, ["images"], ["logits", "probabilities"], axes)
        what += f"; fixed image size {images.shape[2]}x{images.shape[3]}"
    _copy_run_files(run_dir, tmp, ("config.yaml", "inputs.json"))  # inputs.json: the images' normalization
    batches = [(images[: max(1, len(images) // 2)],), (images[len(images) // 2:],)]
    return max_difference(tmp / ONNX_FILE, graph, [b for b in batches if len(b[0])], ["images"]), what


def export_onnx(run_dir: str | Path, out: str | Path, which: str = "best", texts: list[str] | None = None,
                overwrite: bool = False) -> OnnxExport:
    """Export a classify or vision run to ``out/model.onnx`` (+ the files that prepare its inputs) and check it
    with onnxruntime. ``texts``: documents to check a classifier on (default: random ids). Raises ValueError
    for translation runs or when onnxruntime differs from PyTorch by more than :data:`TOLERANCE`; then ``out``
    is not written."""
    run_dir = Path(run_dir)
    task = run_kind(run_dir)
    kind = "classifier" if task == "classification" else task  # the name export.json and OnnxExport use
    if kind == "translation":
        raise ValueError(f"{run_dir}: ONNX export is for classify and vision runs; export Transformer "
                         "translation runs with --format ctranslate2")
    if kind == "captioning":
        raise ValueError(f"{run_dir}: ONNX export is for classify and vision runs, not captioning runs")
    with atomic_output_dir(Path(out), overwrite) as tmp:
        try:
            if kind == "classifier":
                diff, what = _export_classifier(run_dir, tmp, which, texts)
            else:
                diff, what = _export_vision(run_dir, tmp, which)
        except torch.onnx.errors.OnnxExporterError as e:  # e.g. adaptive pooling to 7x7 of a 16x16 map (FcaNet)
            raise ValueError(f"{run_dir}: the model cannot be exported to ONNX: {str(e).splitlines()[0]}") from e
        if not diff <= TOLERANCE:
            raise ValueError(f"{run_dir}: onnxruntime differs from PyTorch by {diff:.3g} (> {TOLERANCE:g}) on {what}")
        (tmp / "export.json").write_text(json.dumps(
            {"format": "onnx", "kind": kind, "run_dir": str(run_dir.resolve()), "max_abs_diff": diff,
             "check_inputs": what}, indent=1) + "\n", encoding="utf-8")
    return OnnxExport(Path(out), kind, diff, what)
