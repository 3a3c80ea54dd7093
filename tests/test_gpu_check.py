"""``scripts/gpu_check.sh --tiny --device cpu``: every section of the GPU check runs through its real code path
with tiny sizes, so the one prepared GPU command cannot rot; and ``scripts/gpu_data.sh`` prepares its data."""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}


def test_tiny_cpu_run_writes_every_section(tmp_path):
    out = tmp_path / "report.md"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--tiny", "--device", "cpu", "--out",
                           str(out), "--work", str(tmp_path / "work")], env=_env(), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert report.startswith("# GPU check (tiny sizes") and "**failed**" not in report
    sections = {}
    for name in _gpu_check().SECTIONS:  # each section opened and closed with its time
        assert f"\n## {name}\n" in report and f"\n({name}: " in report, name
        sections[name] = report[report.index(f"\n## {name}\n"):report.index(f"\n({name}: ")]
    for name in ("rnn", "transformer", "classifier", "vision", "compile"):
        assert "- exit code 0" in sections[name] and "- last train record: step" in sections[name], name
        assert "training.precision=bf16" in sections[name]
    for name, text in sections.items():
        assert "- peak memory of the section: " in text, name
    assert "last eval record" in sections["rnn"] and "bleu" in sections["rnn"]
    assert "model.attention=cbam" in sections["vision"] and "training.compile=true" in sections["compile"]
    assert "| ratio ours/torch |" in sections["attention"] and "(cpu, bf16)" in sections["attention"]
    assert "**MFU" not in sections["transformer_bench"] and "| MFU |" in sections["transformer_bench"]
    assert "| with cache sent/s | without cache sent/s |" in sections["beam"] and "6/6 |" in sections["beam"]
    assert "python scripts/bench_trainer.py --device cpu --precision bf16" in sections["trainer"]
    assert report.rstrip().endswith("Done: 9 of 9 sections finished without error.")


def test_a_failing_section_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    import torch

    gpu_check = _gpu_check()
    # main() sets up the process as a script does (data folder, working directory, torch.compile in --tiny):
    # all of it is put back after the test
    monkeypatch.setenv("SEQ2SEQ_ATTN_DATA", os.environ.get("SEQ2SEQ_ATTN_DATA", ""))
    monkeypatch.chdir(os.getcwd())
    monkeypatch.setattr(torch, "compile", torch.compile)

    def broken(name):
        raise RuntimeError(f"no {name} today")

    monkeypatch.setattr(gpu_check, "_script", broken)
    out = tmp_path / "r.md"
    assert gpu_check.main(["--tiny", "--device", "cpu", "--out", str(out), "--work", str(tmp_path / "w"),
                           "--only", "attention", "vision"]) == 1
    report = out.read_text(encoding="utf-8")
    assert "## attention\n\n**failed**: RuntimeError: no bench_attention today\n- peak memory" in report
    assert "- exit code 0" in report.split("## vision")[1]
    assert report.rstrip().endswith("Done: 1 of 2 sections finished without error.")
    assert "no bench_attention today" in capsys.readouterr().err  # the traceback goes to the log


def test_gpu_data_copies_the_needed_files_with_an_imdb_subset(tmp_path):
    source = _gpu_check().make_tiny_data(tmp_path / "shared")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_data.sh"), str(tmp_path / "dev")],
                          env={**_env(), "SEQ2SEQ_ATTN_DATA": str(source)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for f in ("multi30k/train.de.gz", "multi30k/test_2016_flickr.en.gz", "cifar10/cifar10_yoongikim_jpeg.npz"):
        assert (tmp_path / "dev" / f).read_bytes() == (source / f).read_bytes()
    rows = gzip.decompress((tmp_path / "dev" / "imdb" / "train.csv.gz").read_bytes()).decode().splitlines()
    full = gzip.decompress((source / "imdb" / "train.csv.gz").read_bytes()).decode().splitlines()
    assert rows[0] == full[0] and rows[1:] == full[1::5]
    (source / "imdb" / "test.csv.gz").unlink()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_data.sh"), str(tmp_path / "dev2")],
                          env={**_env(), "SEQ2SEQ_ATTN_DATA": str(source)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "imdb/test.csv.gz not found" in proc.stderr
