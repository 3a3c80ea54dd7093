"""Captioning through the one Trainer: a tiny set overfit to exact captions, predict's outputs (captions,
n-best, attention strips), hard attention's REINFORCE term and deterministic evaluation, and exact resume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _caption_tiny import tiny_set, write_coco
from PIL import Image
from safetensors.torch import load_file

from seq2seq_attn.captioning.config import CaptionConfig
from seq2seq_attn.captioning.lifecycle import load_run, read_image_files
from seq2seq_attn.captioning.task import CaptionTask, evaluate_captions
from seq2seq_attn.cli import main
from seq2seq_attn.config import from_dict
from seq2seq_attn.training import run_training

ROOT = Path(__file__).resolve().parent.parent


def caption_config(run_dir: Path, steps: int, normalize: str = "softmax", encoder: dict | None = None,
                   **training) -> CaptionConfig:
    return from_dict(CaptionConfig, {
        "data": {}, "batch_size": 8,
        "model": {"encoder": {"widths": [8, 16]} | (encoder or {}),
                  "decoder": {"emb_dim": 16, "hidden": 32, "doubly_stochastic": 0.01, "normalize": normalize,
                              "dropout": 0.1}},
        "training": {"run_dir": str(run_dir), "device": "cpu", "cpu_threads": 1, "lr": 0.01, "max_steps": steps,
                     "max_epochs": 1000, "log_every": 1, "eval_every": steps, "progress": False,
                     "metric": "word_acc", "metric_mode": "max", "tensorboard": False} | training})


def train(cfg: CaptionConfig, data, resume: bool = False) -> None:
    threads = torch.get_num_threads()
    try:
        assert run_training(CaptionTask(cfg, data=(data, data)), cfg.training, cfg, resume=resume) == 0
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The tiny set trained through the CLI (a subprocess) from COCO files: (root, data, image folder)."""
    root = tmp_path_factory.mktemp("caption_cli")
    data = tiny_set(8)
    folder = write_coco(root, data)
    split = f"{{captions: {root / 'captions.json'}, images: {folder}}}"
    config = root / "caption.yaml"
    config.write_text(f"""
data: {{format: coco, image_size: [16, 48], train: {split}, valid: {split}, test: {split}}}
model:
  encoder: {{widths: [8, 16]}}
  decoder: {{emb_dim: 16, hidden: 32, doubly_stochastic: 0.01}}
batch_size: 8
training: {{run_dir: {root / 'run'}, device: cpu, cpu_threads: 1, lr: 0.01, max_steps: 60, max_epochs: 1000,
           eval_every: 60, metric: word_acc, metric_mode: max, progress: false, tensorboard: false}}
""", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "seq2seq_attn", "caption", "train", str(config)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test (8 images, beam 1" in done.stdout
    return root, data, folder


def test_cli_overfits_exact_captions_and_predict_writes_nbest_and_strips(cli_run):
    root, data, folder = cli_run
    metrics = json.loads((root / "run" / "test_metrics.json").read_text(encoding="utf-8"))
    assert metrics["exact"] == 100.0 and metrics["word_acc"] == 100.0 and metrics["chrf"] == 100.0
    assert metrics["signatures"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    out = root / "pred"
    files = [str(folder / f"{n}.png") for n in data.names[:3]]
    assert main(["caption", "predict", str(root / "run"), "--images", *files, "--out", str(out), "--beam", "3",
                 "--n-best", "2"]) == 0
    rows = (out / "captions.tsv").read_text(encoding="utf-8").splitlines()
    assert rows == [f"{f}\t{' '.join(c[0])}" for f, c in zip(files, data.captions[:3])]
    nbest = (out / "nbest.txt").read_text(encoding="utf-8").splitlines()
    assert len(nbest) == 6 and nbest[0].startswith(f"0 ||| {files[0]} ||| {' '.join(data.captions[0][0])} ||| ")
    scores = [float(line.rsplit("|||", 1)[1]) for line in nbest]
    assert scores[0] >= scores[1] and scores[2] >= scores[3]
    strips = sorted((out / "attention").glob("*.png"))
    assert [p.name for p in strips] == ["00001_img0.png", "00002_img1.png", "00003_img2.png"]
    with Image.open(strips[0]) as im:
        assert im.size[0] > 4 * im.size[1]  # the image + 3 words + </s> side by side
    assert not list(root.glob(".*tmp*")) and not list(out.glob(".*tmp*"))


def test_explore_page_shows_each_words_attention(cli_run):
    from test_explore import CHROMIUM, dump_dom, page_data

    from seq2seq_attn.explore import run_kind
    from seq2seq_attn.explore.page import dequantize

    root, data, folder = cli_run
    assert run_kind(root / "run") == "captioning"
    page = root / "caption.html"
    assert main(["explore", str(root / "run"), "--input", str(folder), "--limit", "2", "--n-best", "2",
                 "--beam", "2", "--out", str(page)]) == 0
    d = page_data(page)
    img = d["images"][1]
    assert img["name"] == "img1.png" and (img["h"], img["w"]) == (8, 24) and len(img["hyps"]) == 2
    assert img["hyps"][0]["words"] == [*data.captions[1][0], "</s>"]
    rows = dequantize(img["hyps"][0]["attention"], (4, 8 * 24))
    run = load_run(root / "run", "cpu")
    want = run.caption(read_image_files([folder / "img1.png"], run.inputs), 2, 2)[0][0].attention
    assert np.abs(rows - want.numpy()).max() <= 1 / 510 + 1e-6  # one byte a weight
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed: the page script is not run")
    dom = dump_dom(page, "img=1&hyp=0&word=2").split('id="img-1"')[1]
    assert 'data-word="2"' in dom and dom.count('class="tok hl"') == 1
    colors = re.findall(r"rgba\(220, 38, 38, ([0-9.]+)\)", dom)[:8 * 24]
    assert [float(c) for c in colors] == pytest.approx((rows[2] * 0.75).tolist(), abs=3e-3)


def test_hard_attention_trains_with_reinforce_and_evaluates_deterministically(tmp_path):
    data = tiny_set(8)
    train(caption_config(tmp_path / "run", 4, "categorical"), data)
    log = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8")
    assert '"attn_reward"' in log and '"attn_baseline"' in log and '"doubly_stochastic"' in log
    run = load_run(tmp_path / "run", "cpu", "latest")
    assert int(run.model.decoder.attention.normalize.num_updates) == 4
    first = evaluate_captions(run.model, data, run.vocab, run.device, run.cfg)
    assert evaluate_captions(run.model, data, run.vocab, run.device, run.cfg) == first
    assert 0.0 <= first["attn_correctness"] <= 1.0
    weights = run.caption(data.images[:2])[0][0].attention
    assert set(weights.unique().tolist()) <= {0.0, 1.0}  # eval: the arg-max position, one-hot


@pytest.mark.parametrize("encoder", [{}, {"row_rnn": True, "position": "learned"}])
def test_resume_is_exact(tmp_path, encoder):
    """Stopping at step 3 and resuming to 6 gives bit-identical weights (dropout, hard-attention samples and
    the REINFORCE baseline included) to one uninterrupted run; also with the row RNN and learned positions."""
    data = tiny_set(8, boxes=False)
    train(caption_config(tmp_path / "whole", 6, "categorical", encoder, save_every=3, eval_every=100), data)
    train(caption_config(tmp_path / "parts", 3, "categorical", encoder, save_every=3, eval_every=100), data)
    train(caption_config(tmp_path / "parts", 6, "categorical", encoder, save_every=3, eval_every=100), data,
          resume=True)
    a = load_file(tmp_path / "whole" / "checkpoints" / "step-000006.safetensors")
    b = load_file(tmp_path / "parts" / "checkpoints" / "step-000006.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["decoder.attention.normalize.num_updates"]) == 6
