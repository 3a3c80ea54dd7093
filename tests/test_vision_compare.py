"""The module comparison: counting, timing, memory, attention maps, the outputs, and the ``vision`` CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seq2seq_attn.cli import main
from seq2seq_attn.timing import cpu_peak_allocated
from vision import list_attention
from vision.attention_maps import _spatial, attention_heatmaps
from vision.benchmark import count_flops
from vision.compare import compare_modules, expand_modules, module_model_config, seed_config, train_and_test
from vision.config import CompareConfig, VisionCompareConfig, VisionDataConfig, VisionModelConfig
from vision.data import INPUT_SPEC_FILE, InputSpec, channel_stats
from vision.lifecycle import load_run
from vision.models import ResNet
from vision.task import VisionTask, prepare_data


def test_expand_modules():
    assert expand_modules(["all"]) == ["none", *list_attention()]
    assert expand_modules(["se", "none", "se"]) == ["se", "none"]
    with pytest.raises(ValueError, match="unknown module 'nope'"):
        expand_modules(["nope"])


def test_per_module_settings_override_the_backbone_config():
    cfg = VisionCompareConfig(
        data=VisionDataConfig(path="x.npz"),
        model=VisionModelConfig(attention_kwargs={"rd_ratio": 0.25}, attention_stages=[1, 2]),
        compare=CompareConfig(module_kwargs={"se": {"rd_ratio": 0.5}}, module_position={"se": "stage"},
                              module_stages={"se": [3]}),
    )
    se = module_model_config(cfg, "se")
    assert (se.attention, se.attention_kwargs, se.attention_position, se.attention_stages) == \
        ("se", {"rd_ratio": 0.5}, "stage", [3])
    base = module_model_config(cfg, "none")
    assert base.attention is None and base.attention_stages == [1, 2] and base.attention_position == "block"


def test_flops_of_a_convolution_and_a_linear_layer():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 5 * 4, 2))
    flops = count_flops(model, torch.randn(2, 3, 5, 4))
    assert flops == 2 * (2 * 3 * 9 * 8 * 5 * 4) + 2 * (2 * 160 * 2)  # 2 FLOPs per multiply-add, batch of 2


def test_cpu_peak_memory_sees_temporary_tensors():
    size = 1 << 20  # floats

    def fn():
        a = torch.ones(size)  # 4 MiB
        b = a * 2  # another 4 MiB while a is alive
        del a
        return b.sum()

    peak = cpu_peak_allocated(fn)
    assert 8 * 2**20 <= peak < 9 * 2**20
    assert cpu_peak_allocated(lambda: torch.ones(size // 4).sum()) < 2 * 2**20


def test_spatial_maps_from_recorded_weights():
    b, c, h, w = 2, 8, 3, 4
    spatial = torch.rand(b, 1, h, w)
    assert torch.equal(_spatial(spatial, b, c, h, w), spatial[:, 0])
    affinity = torch.softmax(torch.randn(b, h * w, h * w), -1)
    assert torch.allclose(_spatial(affinity, b, c, h, w), affinity.mean(1).view(b, h, w))
    heads = torch.softmax(torch.randn(b * 2, h * w, h * w), -1)  # (B * heads, HW, HW)
    assert _spatial(heads, b, c, h, w).shape == (b, h, w)
    context = torch.softmax(torch.randn(b, 1, h * w), -1)  # GC-style weights over positions
    assert torch.allclose(_spatial(context, b, c, h, w), context.view(b, h, w))
    assert _spatial(torch.rand(b, c, 1, 1), b, c, h, w) is None  # channel weights
    assert _spatial(torch.rand(b, c, c), b, c, h, w) is None  # channel affinity


@pytest.mark.skipif(not {"se", "sse"} <= set(list_attention()), reason="se/sse not registered yet")
def test_attention_heatmaps_use_spatial_maps_or_say_they_do_not():
    x = torch.randn(3, 1, 12, 12)
    torch.manual_seed(0)
    heat, note = attention_heatmaps(ResNet([1, 1], [16, 16], in_channels=1, attention="sse"), x, min_size=6)
    assert heat.shape == (3, 12, 12) and note == "map at 6x6"
    assert torch.allclose(heat.amax(dim=(1, 2)), torch.ones(3)) and heat.min() >= 0
    heat, note = attention_heatmaps(ResNet([1, 1], [16, 16], in_channels=1, attention="se"), x, min_size=7)
    assert heat.shape == (3, 12, 12) and note == "|output| 12x12 (no spatial map)"
    assert attention_heatmaps(ResNet([1], [8], in_channels=1), x) is None


def _tiny_npz(tmp_path):
    """Two easy classes of 8x8 gray images: bright square top-left or bottom-right."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 40, size=(80, 8, 8), dtype=np.uint8)
    y = np.arange(80) % 2
    x[y == 0, :4, :4] += 200
    x[y == 1, 4:, 4:] += 200
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    return path


@pytest.mark.skipif("se" not in list_attention(), reason="se not registered yet")
def test_compare_modules_writes_table_csv_figures_and_reuses_finished_runs(tmp_path):
    cfg = VisionCompareConfig(
        data=VisionDataConfig(path=str(_tiny_npz(tmp_path)), batch_size=16, augment=False),
        model=VisionModelConfig(arch="small", widths=[8, 16]),
        compare=CompareConfig(modules=["none", "se"], seeds=[1, 2],
                              out_dir=str(tmp_path / "cmp"), bench_repeats=1, bench_warmup=0, map_images=2,
                              map_min_size=4),
    )
    cfg.training.max_epochs, cfg.training.lr, cfg.training.progress = 1, 0.01, False
    logs: list[str] = []
    results = compare_modules(cfg, log=logs.append)
    assert [r.module for r in results] == ["none", "se"]
    for r in results:
        assert r.error is None, r.error
        assert len(r.accs) == 2 and all(0 <= a <= 100 for a in r.accs)
        assert r.params > 0 and r.flops > 0 and r.fwd_ms > 0 and r.fwd_bwd_ms > 0 and r.fwd_bwd_peak > 0
    assert results[1].params > results[0].params
    assert results[0].acc_mean > 80  # the task is easy: training through the Trainer works
    out = tmp_path / "cmp"
    table = (out / "results.md").read_text()
    assert "| none |" in table and "| se |" in table and "± " in table
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [r["module"] for r in rows] == [r.module for r in results] and rows[1]["seeds"] == "2"
    assert (out / "comparison.png").stat().st_size > 0 and (out / "attention_maps.png").stat().st_size > 0
    assert (out / "runs" / "se-seed2" / "result.json").is_file()
    assert InputSpec.load(out / "runs" / "se-seed2") == VisionTask(seed_config(cfg, "se", 2)).input_spec
    # A rerun reuses a finished run (same config): the same test numbers and weights, without training.
    test, model, _ = train_and_test(seed_config(cfg, "se", 2), prepare_data(cfg.data))
    assert test["acc"] == results[1].accs[1] and "train_seconds" in test
    assert model.attention_modules()


def test_cli_compare_without_config_and_train_with_config(tmp_path, capsys):
    data = _tiny_npz(tmp_path)
    code = main(["vision", "compare", "--data", str(data), "--arch", "small", "--modules", "none",
                 "--no-train", "--out", str(tmp_path / "c"), "--set", "model.widths=[8, 16]",
                 "--set", "compare.bench_repeats=1"])
    assert code == 0
    assert "| none |" in capsys.readouterr().out
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data:\n  path: {data}\n  batch_size: 16\n"
        "model:\n  arch: small\n  widths: [8, 16]\n"
        f"training:\n  run_dir: {tmp_path / 'run'}\n  max_epochs: 1\n  metric: acc\n  metric_mode: max\n"
        "  progress: false\n"
    )
    assert main(["vision", "train", str(config)]) == 0
    assert "test (16 images" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    # The loaded run predicts what the test evaluation scored.
    run = load_run(tmp_path / "run", "cpu")
    assert run.weights.name == "best.safetensors" and Path(metrics["weights"]) == run.weights
    probs = run.predict(run.task.test_set.images)  # (16, classes)
    assert torch.allclose(probs.sum(-1), torch.ones(16))
    acc = 100.0 * (probs.argmax(-1) == run.task.test_set.labels).float().mean().item()
    assert acc == pytest.approx(metrics["acc"])
    with pytest.raises(FileNotFoundError, match="not a run dir"):
        load_run(tmp_path, "cpu")
    _check_run_is_self_contained(tmp_path / "run", data, run.task)
    config.write_text("data:\n  path: x.npz\nmodel:\n  attention: nope\n")
    assert main(["vision", "train", str(config)]) == 2
    assert "train.yaml: model: unknown attention module 'nope'" in capsys.readouterr().err


def _check_run_is_self_contained(run_dir: Path, data: Path, task) -> None:
    """The run loads and predicts from its run dir alone; old run dirs without inputs.json fall back to the data."""
    images = task.test_set.images
    expected = load_run(run_dir, "cpu").predict(images)
    saved = json.loads((run_dir / INPUT_SPEC_FILE).read_text())
    mean, std = channel_stats(task.train_set.images)
    assert saved == {"mean": pytest.approx(mean), "std": pytest.approx(std), "classes": ["0", "1"],
                     "num_classes": 2, "channels": 1, "height": 8, "width": 8}
    moved = data.rename(data.with_name("moved.npz"))
    run = load_run(run_dir, "cpu")  # the data file is gone: nothing reads it
    assert run._task is None and run.inputs == task.input_spec
    torch.testing.assert_close(run.predict(images), expected)
    with pytest.raises(FileNotFoundError):
        run.task  # evaluation still needs the data  # noqa: B018
    (run_dir / INPUT_SPEC_FILE).rename(run_dir / "inputs.bak")
    with pytest.raises(FileNotFoundError):  # a run dir from before inputs.json: the data are read again
        load_run(run_dir, "cpu")
    moved.rename(data)
    torch.testing.assert_close(load_run(run_dir, "cpu").predict(images), expected)
    (run_dir / INPUT_SPEC_FILE).write_text(json.dumps({**saved, "channels": "1"}))
    with pytest.raises(ValueError, match=r"inputs.json: key 'channels' must be a JSON integer"):
        load_run(run_dir, "cpu")
    (run_dir / INPUT_SPEC_FILE).write_text(json.dumps({**saved, "mean": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"inputs.json: mean/std have 2/1 values for 1 channels"):
        load_run(run_dir, "cpu")
