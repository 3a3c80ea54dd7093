"""Every example config in configs/ loads into its task's typed config."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq_attn.captioning.config import CaptionConfig
from seq2seq_attn.classification.config import ClassificationConfig
from seq2seq_attn.config import load_config
from seq2seq_attn.translation.config import TranslationConfig
from vision.config import VisionCompareConfig, VisionConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
STUDIES = sorted(CONFIG_DIR.glob("study_*.yaml"))
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if p not in STUDIES)


def config_class(path: Path) -> type:
    """The task a config belongs to, from its file name (cls_*, caption_*, vision_compare_*, vision_*, else
    translation)."""
    name = path.name
    if name.startswith("caption_"):
        return CaptionConfig
    if name.startswith("cls_"):
        return ClassificationConfig
    if name.startswith("vision_compare"):
        return VisionCompareConfig
    if name.startswith("vision_"):
        return VisionConfig
    return TranslationConfig


def test_there_are_configs_for_every_task():
    kinds = {config_class(p) for p in CONFIGS}
    assert {TranslationConfig, ClassificationConfig, VisionConfig} <= kinds


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    cfg = load_config(config_class(path), path)
    assert cfg.training.run_dir, f"{path.name}: no run_dir"


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_study_config_loads_and_every_cell_config_builds(path, monkeypatch):
    from seq2seq_attn.study.config import check_cell_configs, expand_cells, load_study

    monkeypatch.chdir(CONFIG_DIR.parent)  # the task configs are named relative to the checkout
    cfg = load_study(path)
    cells = expand_cells(cfg)
    assert cells, f"{path.name}: no cells"
    check_cell_configs(cfg, cells)
