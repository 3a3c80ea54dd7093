"""The vision lifecycle: train, load a run (:class:`VisionRun`), evaluate and predict.

``seq2seq-attn vision train`` only parses its arguments and calls :func:`train`; ``vision compare`` runs many
trainings through :mod:`vision.compare`. A run dir holds ``config.yaml`` and the weights written by the
Trainer; the images (and with them the normalization statistics and the number of classes) are read again from
the config's data source when a run is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.training.lifecycle import LoadedRun, load_task_config, load_weights_for_inference, run_config_path

from .config import VisionConfig
from .glimpse import plot_glimpse_paths
from .models.ram import RecurrentAttentionModel
from .task import VisionTask


@dataclass
class VisionRun(LoadedRun):
    """A trained image classifier: ``cfg`` (:class:`VisionConfig`), ``model`` (eval mode on ``device``), the
    ``weights`` loaded and its ``task`` (the data splits, the normalization and the class count)."""

    cfg: VisionConfig
    task: VisionTask = field(repr=False)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) -> class probabilities (B, num_classes), on the CPU."""
        x = self.task.prepare_inputs(images.to(self.device))  # normalized, not augmented
        return torch.softmax(self.model(x).float(), -1).cpu()


def load_run(run_dir: str | Path, device: str | torch.device = "auto", which: str = "best",
             task: VisionTask | None = None) -> VisionRun:
    """The run in ``run_dir`` with its ``which`` weights ("best", "latest" or a file) on ``device``; ``task``
    reuses data already read for the same config (else they are read again)."""
    run_dir = Path(run_dir)
    cfg = load_task_config(VisionConfig, run_config_path(run_dir))
    task = VisionTask(cfg) if task is None else task
    model, dev, weights = load_weights_for_inference(task.build_model(), run_dir, which, device)
    return VisionRun(run_dir, cfg, model, dev, weights, task)


def evaluate(run: VisionRun) -> dict[str, float]:
    """Loss, accuracy (%) and error (%) of ``run`` on the test split; written to ``run_dir/test_metrics.json``
    with the weights file used, and printed."""
    metrics = run.task.evaluate_test(run.model, run.device)
    (run.run_dir / "test_metrics.json").write_text(json.dumps({"weights": str(run.weights), **metrics}, indent=1),
                                                   encoding="utf-8")
    print(f"test ({len(run.task.test_set)} images, {run.weights.name}): acc {metrics['acc']:.2f}%, "
          f"loss {metrics['loss']:.4f}")
    return metrics


def train(config_path: str | Path, overrides: dict | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> int:
    """Train as the config says, then score the best weights on the test split (:func:`evaluate`; under
    ``torchrun`` rank 0 alone). Returns the Trainer's exit code."""
    from seq2seq_attn.training import run_training

    cfg = load_task_config(VisionConfig, config_path, overrides)  # threads set before images are decoded
    task = VisionTask(cfg)
    code = run_training(task, cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)
    if code != 0 or int(os.environ.get("RANK", "0")) != 0:
        return code
    run = load_run(cfg.training.run_dir, device or cfg.training.device, "best", task=task)
    evaluate(run)
    if isinstance(run.model, RecurrentAttentionModel):
        print(f"glimpse paths: {write_glimpse_paths(run)}")
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
