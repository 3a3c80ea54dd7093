"""The vision lifecycle: train, load a run (:class:`VisionRun`), evaluate and predict.

``seq2seq-attn vision train`` only parses its arguments and calls :func:`train`; ``vision compare`` runs many
trainings through :mod:`vision.compare`. A run dir holds ``config.yaml`` and the weights written by the
Trainer, and ``inputs.json`` (:class:`~vision.data.InputSpec`: normalization statistics, class names and
count, input size), so that a run loads and predicts without its data. The data source is read only to
evaluate (and for runs trained before ``inputs.json`` existed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.training.checkpoint import atomic_write_bytes
from seq2seq_attn.training.lifecycle import LoadedRun, load_task_config, load_weights_for_inference, run_config_path

from .attention.stn import SpatialTransformer
from .config import VisionConfig
from .data import InputSpec, Normalize
from .glimpse import plot_glimpse_paths
from .models.racnn import RecurrentAttentionCNN, plot_regions
from .models.ram import RecurrentAttentionModel
from .models.stn import plot_sampling_grids
from .task import VisionTask, build_model


@dataclass
class VisionRun(LoadedRun):
    """A trained image classifier: ``cfg`` (:class:`VisionConfig`), ``model`` (eval mode on ``device``), the
    ``weights`` loaded and its ``inputs`` (:class:`InputSpec`: normalization, class names and count, input
    size). ``task`` (the data splits) is read from the config's data source on first use."""

    cfg: VisionConfig
    inputs: InputSpec
    _task: VisionTask | None = field(default=None, repr=False)
    normalize: Normalize = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.normalize = Normalize(self.inputs.mean, self.inputs.std)

    @property
    def task(self) -> VisionTask:
        """The run's data (train/valid/test splits), read on first use: only evaluation needs them."""
        if self._task is None:
            self._task = VisionTask(self.cfg)
        return self._task

    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) on the device -> normalized float (B, C, H, W), not augmented."""
        return self.normalize(images)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) -> class probabilities (B, num_classes), on the CPU."""
        x = self.prepare_inputs(images.to(self.device))
        return torch.softmax(self.model(x).float(), -1).cpu()


def load_run(run_dir: str | Path, device: str | torch.device = "auto", which: str = "best",
             task: VisionTask | None = None, overrides: dict | None = None) -> VisionRun:
    """The run in ``run_dir`` with its ``which`` weights ("best", "latest" or a file) on ``device``.

    The input spec comes from ``run_dir/inputs.json``; for older run dirs without it, from ``task`` (data
    already read for the same config) or the config's data source. ``overrides``: dotted config keys changed
    for this use (e.g. ``{"model.recurrent.eval_samples": 10}``); one that changes the model's weights fails
    to load. Raises ``FileNotFoundError`` (no ``config.yaml``) and one-line ``ValueError``s (malformed
    ``inputs.json``, weights of another model, a bad override).
    """
    run_dir = Path(run_dir)
    cfg = load_task_config(VisionConfig, run_config_path(run_dir), overrides)
    inputs = InputSpec.load(run_dir)
    if inputs is None:
        task = VisionTask(cfg) if task is None else task
        inputs = task.input_spec
    model = build_model(cfg.model, inputs.num_classes, inputs.channels, inputs.image_shape[1:])
    model, dev, weights = load_weights_for_inference(model, run_dir, which, device)
    return VisionRun(run_dir, cfg, model, dev, weights, inputs, task)


def evaluate(run: VisionRun, out: str | Path | None = None, overrides: dict | None = None) -> dict[str, float]:
    """Loss, accuracy (%) and error (%) of ``run`` on the test split; written as JSON to ``out`` (default
    ``run_dir/test_metrics.json``) with the weights file used and the config ``overrides`` the run was
    loaded with (if any), and printed."""
    metrics = run.task.evaluate_test(run.model, run.device)
    record = {"weights": str(run.weights), **({"overrides": overrides} if overrides else {}), **metrics}
    atomic_write_bytes(Path(out) if out is not None else run.run_dir / "test_metrics.json",
                       json.dumps(record, indent=1).encode("utf-8"))
    print(f"test ({len(run.task.test_set)} images, {run.weights.name}): acc {metrics['acc']:.2f}%, "
          f"loss {metrics['loss']:.4f}")
    return metrics


def train(config_path: str | Path, overrides: dict | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> int:
    """Train as the config says, then score the best weights on the test split (:func:`evaluate`; under
    ``torchrun`` rank 0 alone). Returns the Trainer's exit code."""
    from seq2seq_attn.training import prepare_run_dir, run_training

    cfg = load_task_config(VisionConfig, config_path, overrides)  # threads set before images are decoded
    # Check the run dir (and a --resume's config) before the images are read and decoded; the Trainer
    # creates it, saves the config and the task's inputs.json once all its checks have passed.
    prepare_run_dir(cfg.training.run_dir, cfg, resume=resume, overwrite=overwrite, write=False,
                    guarded=VisionTask.resume_keys)
    task = VisionTask(cfg)
    code = run_training(task, cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)
    if code != 0 or int(os.environ.get("RANK", "0")) != 0:
        return code
    run = load_run(cfg.training.run_dir, device or cfg.training.device, "best", task=task)
    evaluate(run)
    if isinstance(run.model, RecurrentAttentionModel):
        print(f"glimpse paths: {write_glimpse_paths(run)}")
    if isinstance(run.model, RecurrentAttentionCNN):
        print(f"zoomed regions: {write_regions(run)}")
    if any(isinstance(m, SpatialTransformer) for m in run.model.modules()):
        print(f"sampling grids: {write_sampling_grids(run)}")
    return 0


@torch.no_grad()
def write_glimpse_paths(run: VisionRun, count: int = 6, name: str = "glimpses.png") -> Path:
    """Plot the glimpse paths of a RAM run on the first ``count`` test images (read through
    ``capture_attention``) to ``run_dir/name``; titles give the label and the prediction."""
    test = run.task.test_set
    images = test.images[:count]
    with capture_attention(run.model) as maps:
        probs = run.predict(images)
    locations = maps[""][0]  # (B, G, 2), the RAM's one record of the pass
    titles = [f"{test.classes[y]} -> {test.classes[p]}" for y, p in zip(test.labels[:count].tolist(),
                                                                       probs.argmax(-1).tolist())]
    model = run.model
    return plot_glimpse_paths(images.float() / 255.0, locations, model.patch, model.scales,
                              run.run_dir / name, titles)


@torch.no_grad()
def write_sampling_grids(run: VisionRun, count: int = 6, name: str = "stn_grids.png") -> Path:
    """Draw the region the run's first spatial transformer samples on the first ``count`` test images (its
    grid read through ``capture_attention``) to ``run_dir/name``, with the transformer's output below each
    image when it transforms the input itself; titles give the label and the prediction."""
    test = run.task.test_set
    images = test.images[:count]
    st_name, st = next((n, m) for n, m in run.model.named_modules() if isinstance(m, SpatialTransformer))
    warped: list[torch.Tensor] = []
    hook = st.register_forward_hook(lambda mod, inp, out: warped.append(out.detach()))
    try:
        with capture_attention(run.model) as maps:
            probs = run.predict(images)
    finally:
        hook.remove()
    grid = maps[st_name][0]  # (B, H', W', 2)
    shown = None
    if st is getattr(run.model, "transformer", None):  # it warps the input: undo the normalization for display
        mean = torch.tensor(run.inputs.mean, device=warped[0].device).view(1, -1, 1, 1)
        std = torch.tensor(run.inputs.std, device=warped[0].device).view(1, -1, 1, 1)
        shown = (warped[0] * std + mean).cpu()
    titles = [f"{test.classes[y]} -> {test.classes[p]}" for y, p in zip(test.labels[:count].tolist(),
                                                                       probs.argmax(-1).tolist())]
    return plot_sampling_grids(images.float() / 255.0, grid, shown, run.run_dir / name, titles)


@torch.no_grad()
def write_regions(run: VisionRun, count: int = 6, name: str = "racnn_regions.png") -> Path:
    """Draw the squares an RA-CNN run zooms into (read through ``capture_attention``) on the first ``count``
    test images to ``run_dir/name``; titles give the label and the prediction."""
    test = run.task.test_set
    images = test.images[:count]
    with capture_attention(run.model) as maps:
        probs = run.predict(images)
    titles = [f"{test.classes[y]} -> {test.classes[p]}" for y, p in zip(test.labels[:count].tolist(),
                                                                       probs.argmax(-1).tolist())]
    return plot_regions(images.float() / 255.0, maps[""][0], run.run_dir / name, titles)
