"""Timing and peak memory of a callable, the same way for every benchmark (``vision compare`` and
``scripts/bench_*.py``).

Wall times use ``time.perf_counter`` around the call with the device synchronized before and after it (CUDA
kernels run asynchronously). Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the allocation
before the call; on the CPU the peak of the bytes allocated by PyTorch's CPU allocator during the call, read
from the ``Total Allocated`` counter of the profiler's memory events (``torch.profiler``,
``profile_memory=True``). Both count tensors (activations, gradients, workspace), not the Python heap or the
allocator's caches.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

R = TypeVar("R")


def sync(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (CUDA); a no-op on the CPU and MPS."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], R], device: torch.device | str) -> tuple[R, float]:
    """``fn()``'s result and its wall time in seconds (device synchronized before and after)."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def alternating_medians(fns: dict[str, Callable[[], Any]], device: torch.device | str, repeats: int,
                        warmup: int = 0) -> dict[str, float]:
    """Median seconds per call of each function in ``fns`` over ``repeats`` rounds after ``warmup`` rounds.

    The calls alternate (A B, then B A, ...) so that machine noise and thermal drift hit all alike, which
    makes ratios between them meaningful on a shared machine.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            _, seconds = timed(fns[name], device)
            if i >= warmup:
                times[name].append(seconds)
    return {n: statistics.median(t) for n, t in times.items()}


def median_seconds(fn: Callable[[], Any], device: torch.device | str, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls (device synchronized)."""
    return alternating_medians({"fn": fn}, device, repeats, warmup)["fn"]


def cpu_peak_allocated(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by PyTorch's CPU allocator during ``fn()``, above the level when it started.

    Read from the profiler's memory events, whose ``Total Allocated`` counts allocations made while profiling.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, trace = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(trace)
        with open(trace, encoding="utf-8") as fh:
            events = json.load(fh)["traceEvents"]
    finally:
        os.unlink(trace)
    mem = sorted(
        (e for e in events if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == 0),
        key=lambda e: e["ts"],
    )
    if not mem:
        return 0
    start = mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"]
    return max(0, max(e["args"]["Total Allocated"] for e in mem) - start)


def peak_memory(fn: Callable[[], Any], device: torch.device | str) -> int:
    """Peak tensor memory of ``fn()`` in bytes above the level before it (CUDA allocator or CPU profiler)."""
    device = torch.device(device)
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before)
    return cpu_peak_allocated(fn)


def train_step_costs(model: torch.nn.Module, forward: Callable[[], Any], forward_backward: Callable[[], Any],
                     device: torch.device | str, warmup: int, repeats: int) -> dict[str, float | int]:
    """Median latency (ms) and peak tensor memory (bytes) of ``forward`` (``model`` in eval mode) and of
    ``forward_backward`` (train mode); gradients are cleared afterwards and the model left in eval mode.
    Keys: ``fwd_ms``, ``fwd_peak``, ``fwd_bwd_ms``, ``fwd_bwd_peak``."""
    model.eval()
    fwd = median_seconds(forward, device, warmup, repeats)
    fwd_peak = peak_memory(forward, device)
    model.train()
    fwd_bwd = median_seconds(forward_backward, device, warmup, repeats)
    fwd_bwd_peak = peak_memory(forward_backward, device)
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"fwd_ms": 1e3 * fwd, "fwd_peak": fwd_peak, "fwd_bwd_ms": 1e3 * fwd_bwd, "fwd_bwd_peak": fwd_bwd_peak}
