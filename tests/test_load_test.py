"""The load-test script, short: a few requests from concurrent clients against real server processes on
127.0.0.1 (a tiny run), with batching on and off; it stops by itself and reports no 5xx."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _tiny_runs import translation_run

ROOT = Path(__file__).resolve().parent.parent


def test_load_test_script_short(tmp_path: Path) -> None:
    run_dir = translation_run(tmp_path, seed=4)
    out = tmp_path / "load.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "load_test.py"), str(run_dir), "--requests", "24",
                           "--clients", "6", "--beam", "2", "--max-wait-ms", "20", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [r["mode"] for r in rows] == ["batching on", "batching off"]
    for r in rows:
        assert r["requests"] == 24 and r["ok_2xx"] == 24 and r["server_5xx"] == 0 and r["connection_errors"] == 0
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert rows[1]["requests_per_call"] == 1.0  # batching off: one model call per request
    assert "throughput, batching on / off" in proc.stdout
