"""The shared timing helper (seq2seq_attn.timing) used by vision compare and the scripts/bench_*.py benchmarks."""

from __future__ import annotations

import time

import pytest
import torch

from seq2seq_attn.timing import alternating_medians, median_seconds, peak_memory, timed


def test_timed_returns_the_result_and_the_wall_time():
    result, seconds = timed(lambda: time.sleep(0.02) or 7, "cpu")
    assert result == 7 and 0.02 <= seconds < 1.0


def test_alternating_medians_time_each_function_and_skip_warmup():
    calls = {"slow": 0, "fast": 0}

    def slow():
        calls["slow"] += 1
        time.sleep(0.02)

    def fast():
        calls["fast"] += 1

    t = alternating_medians({"slow": slow, "fast": fast}, torch.device("cpu"), repeats=3, warmup=1)
    assert calls == {"slow": 4, "fast": 4}  # warm-up rounds run but are not timed
    assert t["slow"] >= 0.02 > t["fast"]
    assert 0.01 <= median_seconds(lambda: time.sleep(0.01), "cpu", warmup=0, repeats=1) < 1.0
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        alternating_medians({"fast": fast}, "cpu", repeats=0)


def test_cpu_peak_memory_counts_a_temporary_tensor():
    size = 8 * 2**20  # bytes of a float32 tensor allocated and freed inside the call
    assert peak_memory(lambda: torch.ones(size // 4).sum(), "cpu") >= size
