"""The captioning lifecycle: train, load a run (:class:`CaptionRun`), evaluate and predict.

``seq2seq-attn caption train|test|predict`` only parse their arguments and call these functions. A run dir
holds ``config.yaml``, the weights written by the Trainer, ``vocab.json`` and ``caption_inputs.json``
(normalization and image size), so that it loads and predicts without its data; the data side is read only to
evaluate or to caption a split.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..classification.text import WordVocab
from ..training.checkpoint import StagedOutputs, atomic_write_bytes
from ..training.lifecycle import LoadedRun, load_task_config, load_weights_for_inference, run_config_path
from ..translation.search import Hypothesis
from ..translation.subwords import PAD
from .config import CaptionConfig
from .evaluation import search_images
from .figures import save_attention_strip
from .model import build_caption_model
from .task import CaptionInputs, CaptionTask, load_caption_vocab, load_splits, score_captions


def train(config_path: str | Path, overrides: dict | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> int:
    """Train as the config says, then score the best weights on the test split (:func:`evaluate`, rank 0).
    Returns the Trainer's exit code."""
    from ..training import prepare_run_dir, run_training

    cfg = load_task_config(CaptionConfig, config_path, overrides)
    # Check the run dir (and a --resume's config) before the images are read; the Trainer writes config.yaml,
    # vocab.json and caption_inputs.json once all its checks have passed.
    prepare_run_dir(cfg.training.run_dir, cfg, resume=resume, overwrite=overwrite, write=False,
                    guarded=CaptionTask.resume_keys)
    task = CaptionTask(cfg)
    code = run_training(task, cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)
    if code != 0 or int(os.environ.get("RANK", "0")) != 0:
        return code
    evaluate(load_run(cfg.training.run_dir, device or cfg.training.device, "best"))
    return 0


@dataclass
class CaptionRun(LoadedRun):
    """A trained captioning run: ``cfg`` (:class:`CaptionConfig`), ``model`` (eval mode on ``device``), its
    ``vocab`` and ``inputs`` (normalization, image size) and the ``weights`` file loaded."""

    cfg: CaptionConfig
    vocab: WordVocab = field(repr=False)
    inputs: CaptionInputs

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the encoder's feature map: the attention's positions."""
        return self.model.encoder.grid(self.inputs.height, self.inputs.width)

    def caption(self, images: torch.Tensor, beam_size: int | None = None, n_best: int = 1) -> list[list[Hypothesis]]:
        """Hypotheses (best first) for uint8 ``images`` (N, C, H, W) of the run's size, with the config's
        ``decoding`` options (beam ``beam_size`` or ``decoding.beam_size``, widened to ``n_best``)."""
        d = self.cfg.decoding
        beam = max(d.beam_size if beam_size is None else beam_size, n_best)
        return search_images(self.model, images, self.device, d.max_len_b, beam, n_best, d, d.batch_size)

    def words(self, hyp: Hypothesis) -> list[str]:
        return [self.vocab.itos[t] for t in hyp.tokens]


def load_run(run_dir: str | Path, device: str | torch.device = "auto", which: str = "best") -> CaptionRun:
    """The run in ``run_dir`` with its ``which`` weights ("best", "latest" or a file) on ``device``. Raises
    ``FileNotFoundError`` (no config, vocabulary or inputs file) and one-line ``ValueError``s."""
    run_dir = Path(run_dir)
    cfg = load_task_config(CaptionConfig, run_config_path(run_dir))
    vocab = load_caption_vocab(run_dir)
    inputs = CaptionInputs.load(run_dir)
    model = build_caption_model(cfg.model, len(vocab), inputs.image_shape, inputs.mean, inputs.std, PAD)
    model, dev, weights = load_weights_for_inference(model, run_dir, which, device)
    return CaptionRun(run_dir, cfg, model, dev, weights, vocab, inputs)


def evaluate(run: CaptionRun, split: str | None = None, beam_size: int | None = None, limit: int | None = None
             ) -> dict[str, float]:
    """Score ``run`` on ``split`` (default: the config's ``test_split``) with beam ``beam_size`` (default
    ``decoding.beam_size``; the search options of ``decoding``): the metrics of
    :func:`~.task.evaluate_captions`, printed with sacrebleu's BLEU and
    chrF lines and signatures, and written to ``run_dir/test_metrics.json`` (with the split, beam, weights and
    signatures)."""
    split = split or run.cfg.test_split
    data = load_splits(run.cfg, [split])[0]
    beam = run.cfg.decoding.beam_size if beam_size is None else beam_size
    metrics, scores = score_captions(run.model, data, run.vocab, run.device, run.cfg, limit, beam,
                                     run.cfg.decoding)
    record = {"split": split, "beam": beam, "weights": str(run.weights), **metrics,
              "signatures": {s.name: s.signature for s in scores}}
    atomic_write_bytes(run.run_dir / "test_metrics.json", json.dumps(record, indent=1).encode("utf-8"))
    count = len(data.captions) if limit is None else min(limit, len(data.captions))
    line = (f"{split} ({count} images, beam {beam}, {run.weights.name}): word accuracy {metrics['word_acc']:.2f}%, "
            f"exact {metrics['exact']:.2f}%, BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}")
    if "attn_correctness" in metrics:
        line += f", attention correctness {metrics['attn_correctness']:.3f}"
    print(line)
    for s in scores:
        print(f"  {s.text}\n    signature: {s.signature}")
    return metrics


def read_image_files(paths: Sequence[str | Path], inputs: CaptionInputs) -> torch.Tensor:
    """Decode image files with Pillow (the data side's reader) and resize them to the run's size, grey
    (ITU-R 601 luma) for a run on 1-channel images: uint8 (N, C, H, W). Raises ``ValueError`` naming a missing
    or unreadable file."""
    from .data import read_image, stack_resized

    rgb = stack_resized([read_image(Path(p)) for p in paths], (inputs.height, inputs.width))  # (N, 3, H, W)
    if inputs.channels == 3:
        return rgb
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (rgb.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60] or "image"


def predict(run: CaptionRun, images: torch.Tensor, names: Sequence[str], out_dir: Path, beam_size: int | None = None,
            n_best: int = 1, strips: bool = True) -> list[list[Hypothesis]]:
    """Caption uint8 ``images`` (N, C, H, W) and write into ``out_dir`` (all files or none):
    ``captions.tsv`` (name, best caption), ``nbest.txt`` (``i ||| name ||| caption ||| score`` per hypothesis)
    and, with ``strips``, ``attention/NNNNN_name.png`` (the image and each word's attention map over it).
    Prints the captions."""
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    hyps = run.caption(images, beam_size, n_best)
    best = [" ".join(run.words(h[0])) if h else "" for h in hyps]
    nbest = [f"{i} ||| {name} ||| {' '.join(run.words(h))} ||| {h.score:.4f}"
             for i, (name, hs) in enumerate(zip(names, hyps)) for h in hs]
    with StagedOutputs() as stage:
        stage.file(out_dir / "captions.tsv").write_text(
            "".join(f"{n}\t{c}\n" for n, c in zip(names, best)), encoding="utf-8")
        stage.file(out_dir / "nbest.txt").write_text("".join(line + "\n" for line in nbest), encoding="utf-8")
        if strips:
            folder = stage.folder(out_dir / "attention")
            for i, (name, hs) in enumerate(zip(names, hyps), start=1):
                if hs:
                    h = hs[0]
                    save_attention_strip(images[i - 1], run.words(h), h.attention, run.grid,
                                         folder / f"{i:05d}_{_safe_name(name)}.png", title=f"{name}: {best[i - 1]}")
    for name, caption in zip(names, best):
        print(f"{name}\t{caption}")
    return hyps
