"""``seq2seq-attn study``: the tiny study end to end (stopped after its first cell, then resumed without
retraining it, a half-done cell resumed from its checkpoint), failed cells, shards, the growth fit, the
report, and bad study files."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from seq2seq_attn.cli import main
from seq2seq_attn.config import ConfigError
from seq2seq_attn.study import runner, tasks
from seq2seq_attn.study.config import GrowthConfig, expand_cells, load_study
from seq2seq_attn.study.growth import GrowthPoint, GrowthRow, fit_exponent, grow, predict
from seq2seq_attn.study.measure import pool_stats, tensor_stats
from seq2seq_attn.study.report import collect, noise_notes, write_report

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs" / "study_tiny.yaml"


def _study_file(tmp_path: Path, edit=None) -> Path:
    data = yaml.safe_load(TINY.read_text())
    data["study"]["out_dir"] = str(tmp_path / "study")
    if edit is not None:
        edit(data)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tiny_study_stops_resumes_and_reports_every_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the task configs and their data are relative to the checkout
    study = _study_file(tmp_path)
    cfg = load_study(study)
    cells = expand_cells(cfg)
    assert [c.name for c in cells] == ["demo_cls__additive__seed1", "demo_cls__none__seed1",
                                       "demo_mt__additive__seed1", "demo_mt__none__seed1"]
    out = tmp_path / "study" / "cells"
    # "Killed" after its first cell: --max-cells 1 stops the study there.
    assert main(["study", str(study), "--max-cells", "1", "--no-report"]) == 0
    assert "stopped at --max-cells" in capsys.readouterr().out
    assert sorted(p.parent.name for p in out.glob("*/result.json")) == [cells[0].name]
    first = _mtimes(out / cells[0].name)
    # A cell whose training ran but whose results were never written (killed during its measurement):
    # trained here to its end, so that the study must resume it from its checkpoint, not start over.
    run_dir = runner.cell_dir(cfg, cells[2]) / "run"
    assert tasks.train("translation", cells[2].config, {**cells[2].overrides, "training.run_dir": str(run_dir),
                                                          "training.device": "cpu"}, False, True, "cpu") == 0
    checkpoint = _mtimes(run_dir / "checkpoints")
    assert main(["study", str(study)]) == 0
    log = capsys.readouterr().out
    assert f"{cells[0].name}: reused its result.json" in log and "4 cells" in log
    assert _mtimes(out / cells[0].name) == first  # not retrained, nothing rewritten
    assert _mtimes(run_dir / "checkpoints") == checkpoint  # resumed: no new training step
    results = {c.name: json.loads((out / c.name / "result.json").read_text()) for c in cells}
    assert results[cells[2].name]["resumed"] and not results[cells[1].name]["resumed"]
    for name, r in results.items():
        assert r["metric"] in r["quality"] and math.isfinite(r["quality"][r["metric"]]), name
        assert r["cost"]["params"] > 0 and r["cost"]["flops"] > 0 and r["cost"]["fwd_bwd_ms"] > 0, name
        assert r["cost"]["fwd_bwd_peak"] > 0 and r["attention"]["trained"]["modules"] >= 1, name
    # The no-attention baseline: uniform weights over the real tokens, the same before and after training
    # (below 1 only because log N counts the padding); the learned attention moved away from its start.
    none = results["demo_cls__none__seed1"]["attention"]
    assert none["init"]["entropy_ratio"] == pytest.approx(none["trained"]["entropy_ratio"])
    assert none["trained"]["entropy_ratio"] > 0.9
    additive = results["demo_cls__additive__seed1"]["attention"]
    assert additive["trained"]["entropy_ratio"] != pytest.approx(additive["init"]["entropy_ratio"], abs=1e-4)
    # The report holds every cell.
    report = (tmp_path / "study" / "report.md").read_text()
    for c in cells:
        assert f"| {c.task} | {c.mechanism} |" in report  # cost table rows
    assert "Differences inside the seed noise are not claimed" in report and "one seed: no claim" in report
    assert "ConcatReLUScore" in report and "Luong et al. (2015)" in report
    rows = list(csv.DictReader((tmp_path / "study" / "cells.csv").read_text().splitlines()))
    assert [r["task"] + "/" + r["mechanism"] for r in rows] == [f"{c.task}/{c.mechanism}" for c in cells]
    assert {r["status"] for r in rows} == {"done"}
    assert (tmp_path / "study" / "quality.png").stat().st_size > 0


def _fake_result(cfg, cell) -> dict:
    metric = cfg.tasks[cell.task].metric
    result = {"cell": runner.asdict(cell), "quality": {metric: 50.0 + cell.index}, "metric": metric,
              "cost": {"params": 1, "flops": 2, "batch_items": 1, "fwd_ms": 1.0, "fwd_bwd_ms": 2.0,
                       "fwd_peak": 1, "fwd_bwd_peak": 2},
              "attention": {"init": {"modules": 1.0}, "trained": {"modules": 1.0}}, "train_seconds": 0.1}
    runner.cell_dir(cfg, cell).mkdir(parents=True, exist_ok=True)
    runner.atomic_write_json(runner.cell_dir(cfg, cell) / runner.RESULT_FILE, result)
    return result


def test_a_failed_cell_is_recorded_the_others_finish_and_a_rerun_retries_it(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load_study(_study_file(tmp_path))
    broken = {"demo_cls__none__seed1"}

    def fake_run_cell(cfg, cell, device):
        if cell.name in broken:
            raise RuntimeError("the loss went to NaN")
        return _fake_result(cfg, cell)

    monkeypatch.setattr(runner, "run_cell", fake_run_cell)
    logs: list[str] = []
    progress = runner.run_study(cfg, log=logs.append)
    assert progress.failed == {"demo_cls__none__seed1": "RuntimeError: the loss went to NaN"}
    assert len(progress.trained) == 3 and any("FAILED" in line for line in logs)
    error = runner.cell_dir(cfg, expand_cells(cfg)[1]) / runner.ERROR_FILE
    assert "the loss went to NaN" in error.read_text()
    write_report(cfg, log=lambda _: None)
    report = (tmp_path / "study" / "report.md").read_text()
    assert "## Failed cells" in report and "demo_cls__none__seed1`: RuntimeError: the loss went to NaN" in report
    assert [r.status for r in collect(cfg)] == ["done", "failed", "done", "done"]
    broken.clear()  # the cause is fixed: the rerun retries the failed cell only
    progress = runner.run_study(cfg, log=lambda _: None)
    assert progress.trained == ["demo_cls__none__seed1"] and len(progress.reused) == 3
    assert not error.exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed (Debian: apt-get "
                    "install chromium); the page is only checked in a real browser")
def test_report_page_renders_every_table_and_filters_by_task(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load_study(_study_file(tmp_path))
    monkeypatch.setattr(runner, "run_cell", lambda cfg, cell, device: _fake_result(cfg, cell))
    runner.run_study(cfg, log=lambda _: None)
    write_report(cfg, log=lambda _: None)
    page = tmp_path / "study" / "report.html"

    def dom(fragment: str) -> str:
        url = page.resolve().as_uri() + fragment
        proc = subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
                               "--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and 'data-built-ms="' in proc.stdout, proc.stderr[-2000:]
        return proc.stdout

    everything, one_task = dom(""), dom("#task=demo_mt")
    assert everything.count("<td>demo_cls</td>") == 4 and everything.count("<td>demo_mt</td>") == 4  # cost, stats
    assert one_task.count("<td>demo_cls</td>") == 0 and one_task.count("<td>demo_mt</td>") == 4
    assert everything.count('alt="quality"') == 1 and "Luong et al. (2015)" in everything


def test_shards_split_the_cells_disjointly_and_cover_them_all(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load_study(REPO / "configs" / "study_cpu.yaml")
    cells = expand_cells(cfg)
    assert len(cells) == len({c.name for c in cells}) > 10
    for n in (1, 2, 3, 5):
        shares = [runner.shard_cells(cells, i, n) for i in range(n)]
        names = [c.name for share in shares for c in share]
        assert sorted(names) == sorted(c.name for c in cells) and len(names) == len(set(names))
    assert runner.parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            runner.parse_shard(bad)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert runner.env_shard() == (1, 2)
    with tasks.single_process():  # a cell trains alone: the Trainer must not see torchrun's variables
        import os

        assert "RANK" not in os.environ and "WORLD_SIZE" not in os.environ
    assert os.environ["RANK"] == "1"


def test_growth_fit_recovers_a_known_exponent_and_caps_stop_the_growth():
    gen = torch.Generator().manual_seed(0)
    sizes = [64 * 2 ** i for i in range(9)]
    for k in (1.0, 1.5, 2.0):
        noise = 1 + 0.03 * torch.randn(len(sizes), generator=gen)
        times = [3e-7 * n ** k * float(e) for n, e in zip(sizes, noise)]
        fitted, c = fit_exponent(sizes, times)
        assert fitted == pytest.approx(k, abs=0.03) and c == pytest.approx(3e-7, rel=0.3)
    assert predict([100, 200], [1.0, 4.0], 400) == pytest.approx(16.0)  # power law through the last two
    assert predict([100], [1.0], 300) == pytest.approx(9.0)  # quadratic from one point
    with pytest.raises(ValueError):
        fit_exponent([64, 64], [1.0, 2.0])
    row = GrowthRow("x", "text", [GrowthPoint(n, fwd_ms=2e-5 * n ** 2, fwd_peak=int(8 * n * n)) for n in sizes])
    row.fit()
    assert row.time_exponent == pytest.approx(2.0) and row.memory_exponent == pytest.approx(2.0, abs=1e-3)
    assert row.tail_time_exponent == pytest.approx(2.0)
    # A real mechanism: quadratic memory, stopped where the predicted peak exceeds the cap.
    cfg = GrowthConfig(text_lengths=[32, 64, 128, 256, 512], repeats=1, warmup=0, memory_cap_mb=0.3,
                       backward=False)
    grown = grow("scaled_dot", cfg, torch.device("cpu"), log=lambda _: None)
    statuses = [p.status for p in grown.points]
    assert statuses[-1].startswith("over memory cap") and all(s == "ok" for s in statuses[:-1])
    assert len(statuses) < 5 and grown.limit.startswith(f"N = {grown.points[-1].positions:,}")
    assert grown.memory_exponent == pytest.approx(2.0, abs=0.35)  # the N x N weights dominate


def test_attention_statistics_by_hand():
    uniform = torch.full((2, 3, 4), 0.25)  # (B, Tq, Tk)
    kind, sums, rows = tensor_stats(uniform, image=False)
    assert kind == "dist" and rows == 6
    assert sums["entropy"] / rows == pytest.approx(math.log(4)) and sums["entropy_ratio"] / rows == pytest.approx(1)
    assert sums["span90"] / rows == 4 and sums["sparsity"] == 0
    one_hot = torch.zeros(1, 2, 16)
    one_hot[0, :, 5] = 1.0  # every query on position (1, 1) of a 4 x 4 map
    kind, sums, rows = tensor_stats(one_hot, image=True)
    assert sums["entropy"] == 0 and sums["span90"] / rows == 1 and sums["spread"] == 0
    assert sums["sparsity"] / rows == pytest.approx(15 / 16)
    spread = torch.zeros(1, 1, 16)
    spread[0, 0, [0, 3]] = 0.5  # half on (0, 0), half on (0, 3): 1.5 positions from the centre, side 4
    assert tensor_stats(spread, image=True)[1]["spread"] == pytest.approx(1.5 / 4)
    gates = torch.tensor([[0.05, 0.5, 0.9]])
    stats = pool_stats({"se": [gates], "nl": [torch.tensor([[-2.0, 3.0]])]}, image=True)
    assert stats["gate_mean"] == pytest.approx(1.45 / 3) and stats["gate_sparsity"] == pytest.approx(1 / 3)
    assert stats["modules"] == 2 and "entropy" not in stats  # Non-local's 1/N scores: no figure


def test_findings_across_modalities_claim_only_beyond_the_seed_noise(tmp_path, monkeypatch):
    from seq2seq_attn.study.report import CellRow, findings_section

    monkeypatch.chdir(REPO)
    cfg = load_study(_study_file(tmp_path, lambda d: d["study"].update(seeds=[1, 2, 3])))
    values = {("demo_cls", "additive"): [0.80, 0.81, 0.82], ("demo_cls", "none"): [0.70, 0.71, 0.72],
              ("demo_mt", "additive"): [10.0, 20.0, 30.0], ("demo_mt", "none"): [15.0, 16.0, 17.0]}
    rows = [CellRow(c, {"quality": {"m": values[(c.task, c.mechanism)][c.seed - 1]}, "metric": "m"}, None)
            for c in expand_cells(cfg)]
    text = "\n".join(findings_section(cfg, rows))
    assert "demo_cls (classify, test accuracy): best `additive` 0.81 ± 0.01; above `none`" in text
    assert "demo_mt (translation, test bleu): best `additive` 20 ± 10; inside the seed noise of `none`" in text
    assert "text tasks where attention beats no attention beyond the noise: 1 of 2 judged." in text


def test_the_reported_figure_is_the_study_files_metric_not_the_one_measured(tmp_path, monkeypatch):
    """A task's ``metric`` chosen after its cells ran (e.g. word accuracy instead of BLEU) is what the report
    and the CSV show, without retraining; a row without one keeps the figure the cell was measured with."""
    from seq2seq_attn.study.report import CellRow, cells_csv

    monkeypatch.chdir(REPO)
    cfg = load_study(_study_file(tmp_path, lambda d: None))
    cell = expand_cells(cfg)[0]
    result = {"quality": {"bleu": 0.0, "word_acc": 97.5}, "metric": "bleu"}
    assert CellRow(cell, result, None, "word_acc").figure() == 97.5
    assert CellRow(cell, result, None).figure() == 0.0
    row = next(csv.DictReader(cells_csv([CellRow(cell, result, None, "word_acc")]).decode().splitlines()))
    assert (row["metric"], float(row["value"])) == ("word_acc", 97.5)


def test_noise_notes():
    notes = noise_notes({"a": (80.0, 1.0, 3), "b": (79.5, 1.0, 3), "c": (70.0, 1.0, 3), "d": (75.0, None, 1)})
    assert notes == {"a": "best", "b": "within seed noise of a", "c": "below a (spreads do not overlap)",
                     "d": "one seed: no claim"}


def test_bad_study_files_are_one_line_errors_naming_file_mechanism_and_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)

    def unknown_key(d):
        d["mechanisms"]["additive"]["set"]["translation"] = {"model.rnn.scroe": "additive"}

    with pytest.raises(ConfigError, match=r"study.yaml: mechanism 'additive' on task 'demo_mt': key "
                                          r"'model.rnn.scroe': translation configs .* have no 'model.rnn.scroe'"):
        load_study(_study_file(tmp_path, unknown_key))

    def bad_value(d):
        d["mechanisms"]["additive"]["set"]["classify"] = {"model.score": "cosine"}

    cfg = load_study(_study_file(tmp_path, bad_value))
    with pytest.raises(ConfigError, match=r"study.yaml: mechanism 'additive' on task 'demo_cls': .*model.score"):
        runner.run_study(cfg, log=lambda _: None)
    assert not (tmp_path / "study" / "cells").exists()  # checked before anything trains

    def unknown_mechanism(d):
        d["tasks"]["demo_cls"]["mechanisms"] = ["additive", "sparsemax"]

    with pytest.raises(ConfigError, match="tasks.demo_cls.mechanisms: unknown mechanism 'sparsemax'"):
        load_study(_study_file(tmp_path, unknown_mechanism))

    def missing_config(d):
        d["tasks"]["demo_cls"]["config"] = "configs/nope.yaml"

    assert main(["study", str(_study_file(tmp_path, missing_config))]) == 2
    assert "configs/nope.yaml: config file not found" in capsys.readouterr().err
    assert main(["study", str(_study_file(tmp_path, lambda d: d["growth"].update(repeats=0)))]) == 2
    assert "study.yaml: growth: repeats, batch and threads must be >= 1" in capsys.readouterr().err
    assert main(["study", "grow", str(TINY)]) == 2
    assert "expected CONFIG, 'growth CONFIG' or 'report CONFIG'" in capsys.readouterr().err


def test_reuse_does_not_depend_on_the_cell_order(tmp_path, monkeypatch, capsys):
    """A mechanism inserted in the middle shifts the later cells' indices: they are still reused (the
    result.json files keep their old index), only the new cells train; changed settings are stale."""
    monkeypatch.chdir(REPO)
    cfg = load_study(_study_file(tmp_path))
    monkeypatch.setattr(runner, "run_cell", lambda cfg, cell, device: _fake_result(cfg, cell))
    assert len(runner.run_study(cfg, log=lambda _: None).trained) == 4

    def insert_dot(d):
        mechs = d["mechanisms"]
        d["mechanisms"] = {"additive": mechs["additive"],
                           "dot": {"family": "score", "set": {"classify": {"model.score": "dot"},
                                                              "translation": {"model.rnn.score": "dot"}}},
                           "none": mechs["none"]}

    grown = load_study(_study_file(tmp_path, insert_dot))
    old = {c.name: c.index for c in expand_cells(cfg)}
    shifted = [c for c in expand_cells(grown) if c.name in old and old[c.name] != c.index]
    assert len(shifted) == 3  # demo_cls__none, demo_mt__additive, demo_mt__none moved
    for c in shifted:  # their files still hold the old index
        saved = json.loads((runner.cell_dir(grown, c) / runner.RESULT_FILE).read_text())
        assert saved["cell"]["index"] == old[c.name] != c.index
    assert [s for _, s in runner.list_cells(grown)] == ["done", "not run", "done", "done", "not run", "done"]
    progress = runner.run_study(grown, log=lambda _: None)
    assert progress.trained == ["demo_cls__dot__seed1", "demo_mt__dot__seed1"] and len(progress.reused) == 4
    # The listing of the CLI: every cell with its state, nothing trained.
    assert main(["study", str(_study_file(tmp_path, insert_dot)), "--list", "--shard", "1/2"]) == 0
    out = capsys.readouterr().out
    assert "   1  demo_cls__dot__seed1" in out and "demo_cls__additive" not in out and "3 cells: 3 done" in out
    # Other settings under the same name: stale, trained again.
    changed = load_study(_study_file(tmp_path, lambda d: d["tasks"]["demo_cls"]["set"].update(
        {"training.max_epochs": 3})))
    assert [s for _, s in runner.list_cells(changed)][:2] == ["stale", "stale"]
    assert runner.run_study(changed, log=lambda _: None).trained == ["demo_cls__additive__seed1",
                                                                     "demo_cls__none__seed1"]


def test_report_puts_text_gates_against_the_same_model_without_the_gate(tmp_path, monkeypatch):
    from seq2seq_attn.study.config import default_mechanism

    monkeypatch.chdir(REPO)

    def add_gates(d):
        d["mechanisms"]["se"] = {"family": "channel gate", "set": {"classify": {"model.channel_gate": "se"}}}
        d["tasks"]["demo_cls"]["mechanisms"] = ["additive", "none", "se"]
        d["tasks"]["demo_mt"]["mechanisms"] = ["additive", "none"]

    cfg = load_study(_study_file(tmp_path, add_gates))
    # cls_demo.yaml scores additively already: `additive` is the model the gate is added to.
    assert default_mechanism(cfg, "demo_cls") == "additive" and default_mechanism(cfg, "demo_mt") == "additive"
    monkeypatch.setattr(runner, "run_cell", lambda cfg, cell, device: _fake_result(cfg, cell))
    runner.run_study(cfg, log=lambda _: None)
    write_report(cfg, log=lambda _: None)
    report = (tmp_path / "study" / "report.md").read_text()
    assert "## Channel gates on text and on images" in report
    # fake quality 50 + index: se (index 2) against additive (index 0) and none (index 1)
    assert "| text | demo_cls | se | 52.000 ± – | additive 50.000 | +2.000 | +1.000 | 0 |" in report
    assert "| mechanism | family | accuracy (mean ± std) | seeds done | per seed | macro_f1 (means) | note |" in report
    rows = list(csv.DictReader((tmp_path / "study" / "cells.csv").read_text().splitlines()))
    assert rows[2]["mechanism"] == "se" and rows[2]["quality"] == "accuracy=52"
