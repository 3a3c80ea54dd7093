"""The study's captioning kind: a tiny COCO-format caption set trained through ``captioning/lifecycle.train``
as study cells (the uniform baseline against additive attention), its test figures, attention statistics over
the feature map and the report's rows."""

from __future__ import annotations

import csv
import json
import math

import pytest
from _caption_tiny import tiny_set, write_coco

from seq2seq_attn.study import runner
from seq2seq_attn.study.config import load_study
from seq2seq_attn.study.report import write_report


def test_captioning_cells_train_measure_and_report(tmp_path):
    root = tmp_path / "data"
    folder = write_coco(root, tiny_set(8))
    split = f"{{captions: {root / 'captions.json'}, images: {folder}}}"
    (tmp_path / "caption.yaml").write_text(f"""
data: {{format: coco, image_size: [16, 48], train: {split}, valid: {split}, test: {split}}}
model:
  encoder: {{widths: [8, 16]}}
  decoder: {{emb_dim: 16, hidden: 16, doubly_stochastic: 0.0}}
batch_size: 8
training: {{run_dir: unused, device: cpu, cpu_threads: 1, lr: 0.01, max_steps: 6, max_epochs: 1000,
           metric: word_acc, metric_mode: max, progress: false, tensorboard: false}}
""", encoding="utf-8")
    (tmp_path / "study.yaml").write_text(f"""
study: {{out_dir: {tmp_path / 'study'}, seeds: [1], bench_warmup: 0, bench_repeats: 1}}
tasks:
  glyphs: {{kind: captioning, config: {tmp_path / 'caption.yaml'}, set: {{training.eval_every: 6}}}}
mechanisms:
  none: {{family: baseline, set: {{captioning: {{model.decoder.normalize: uniform}}}}}}
  additive: {{family: score, set: {{captioning: {{model.decoder.score: additive}}}}}}
""", encoding="utf-8")
    cfg = load_study(tmp_path / "study.yaml")
    assert cfg.tasks["glyphs"].metric == "bleu" and cfg.tasks["glyphs"].also == ["word_acc", "exact",
                                                                                   "attn_correctness"]
    progress = runner.run_study(cfg, log=lambda _: None)
    assert progress.trained == ["glyphs__none__seed1", "glyphs__additive__seed1"] and not progress.failed
    results = {name: json.loads((tmp_path / "study" / "cells" / name / "result.json").read_text())
               for name in progress.trained}
    for name, r in results.items():
        q = r["quality"]
        assert {"bleu", "chrf", "word_acc", "exact", "loss"} <= set(q) and math.isfinite(q["bleu"]), name
        assert r["cost"]["params"] > 0 and r["cost"]["flops"] > 0 and r["cost"]["batch_items"] > 0, name
        # The decoder's weights over the 8 x 24 feature map (two stages: one stride-2 downsampling).
        for stage in ("init", "trained"):
            assert r["attention"][stage]["modules"] == 1 and 0 < r["attention"][stage]["spread"] < 1, name
    # Uniform weights over every position of the map (no padding): entropy / log N = 1 exactly, the same
    # after training; the learned attention moved.
    none, additive = results["glyphs__none__seed1"]["attention"], results["glyphs__additive__seed1"]["attention"]
    assert none["init"]["entropy_ratio"] == pytest.approx(1.0) == none["trained"]["entropy_ratio"]
    assert none["trained"]["span90"] == pytest.approx(math.ceil(0.9 * 8 * 24 - 1e-6))
    assert additive["trained"]["entropy_ratio"] != pytest.approx(additive["init"]["entropy_ratio"], abs=1e-5)
    write_report(cfg, log=lambda _: None)
    report = (tmp_path / "study" / "report.md").read_text()
    assert "| glyphs | none |" in report and "| glyphs | additive |" in report
    assert "word_acc" in report  # the other test figures beside BLEU
    rows = list(csv.DictReader((tmp_path / "study" / "cells.csv").read_text().splitlines()))
    assert [r["kind"] for r in rows] == ["captioning", "captioning"] and all(r["status"] == "done" for r in rows)
    assert all("word_acc=" in r["quality"] for r in rows)
