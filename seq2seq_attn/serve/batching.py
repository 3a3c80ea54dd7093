"""Dynamic batching of concurrent requests: an asyncio queue that a single worker drains, with a bounded wait.

Each request is a :class:`Job` (a list of items and a key: items of jobs with equal keys can be computed in one
model call, e.g. the same beam size and length penalty). The worker takes the first waiting job, then more
until ``max_batch`` items are collected or ``max_wait_ms`` have passed since the first one, groups them by key
and runs each group in one call of ``compute(key, items)`` on a worker thread (the event loop keeps accepting
requests meanwhile; the model is never called from two threads at once). When a grouped call raises, its jobs
run again one by one, so one bad request fails alone. With ``enabled=False`` every job runs alone, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    key: Hashable
    items: Sequence[Any]
    future: asyncio.Future


@dataclass
class BatchStats:
    """Counters for ``/health`` and the tests: model calls, requests and items served, the largest call."""

    calls: int = 0
    requests: int = 0
    items: int = 0
    history: list[int] = field(default_factory=list, repr=False)  # requests per call, the last 1000
    largest_call_requests: int = 0
    largest_call_items: int = 0
    errors: int = 0  # requests that failed (after their grouped call was retried alone)

    def record(self, requests: int, items: int) -> None:
        self.calls += 1
        self.requests += requests
        self.items += items
        self.largest_call_requests = max(self.largest_call_requests, requests)
        self.largest_call_items = max(self.largest_call_items, items)
        self.history = [*self.history[-999:], requests]


class MicroBatcher:
    """``await batcher.submit(key, items)`` -> ``compute(key, items)``'s results for these items.

    Args:
        compute: ``(key, items) -> list`` with one result per item, in order; runs on the worker thread.
        max_batch: most items in one call (a larger job still runs, alone).
        max_wait_ms: how long the first job of a call may wait for others.
        enabled: False = no batching: each job is one call.
    """

    def __init__(self, compute: Callable[[Hashable, list], list], max_batch: int = 64, max_wait_ms: float = 5.0,
                 enabled: bool = True) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}")
        self.compute, self.max_batch, self.max_wait = compute, max_batch, max_wait_ms / 1000.0
        self.enabled = enabled
        self.stats = BatchStats()
        self._queue: asyncio.Queue[Job] | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._worker = self._executor = None

    async def submit(self, key: Hashable, items: Sequence[Any]) -> list:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(Job(key, list(items), future))
        return await future

    async def _collect(self) -> list[Job]:
        """The first waiting job and those that join it within the bounded wait."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        if not self.enabled:
            return jobs
        size = len(jobs[0].items)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            if self._queue.empty():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._collect()
            groups: dict[Hashable, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                # Split a group that is over max_batch items into calls of at most max_batch (one job at least).
                call: list[Job] = []
                for job in group:
                    if call and sum(len(j.items) for j in call) + len(job.items) > self.max_batch:
                        await self._call(key, call)
                        call = []
                    call.append(job)
                await self._call(key, call)

    async def _call(self, key: Hashable, jobs: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for job in jobs for item in job.items]
        try:
            results = await loop.run_in_executor(self._executor, self.compute, key, items)
        except Exception as e:  # noqa: BLE001 (reported to the request that caused it)
            if len(jobs) > 1:
                for job in jobs:
                    await self._call(key, [job])
                return
            self.stats.errors += 1
            if not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return
        self.stats.record(len(jobs), len(items))
        start = 0
        for job in jobs:
            if not job.future.done():  # a client may have gone away
                job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)
