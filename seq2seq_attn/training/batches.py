"""An epoch's batches for the Trainer: this rank's share of each global batch, loaded in order from a position.

Exact resumption needs the loading to leave the global RNGs alone: without workers the batches are collated
in this process in order; with workers the DataLoader gets its own generator and each worker seeds itself
from (seed, epoch, batch index, rank), so augmentation depends only on the batch, not on the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .runtime import mix_seeds, pin_batch, seed_everything


class Loaded:
    """One rank's batch and whether it counts; DataLoader's ``pin_memory`` calls :meth:`pin_memory`."""

    __slots__ = ("batch", "live")

    def __init__(self, batch: Any, live: bool) -> None:
        self.batch, self.live = batch, live

    def pin_memory(self) -> Loaded:
        return Loaded(pin_batch(self.batch), self.live)


class EpochBatches(Dataset):
    """Item ``i``: this rank's share ``indices[rank::world]`` of global batch ``i``, collated by the task.

    A rank whose share would be empty (a batch smaller than the world) gets a one-example stand-in with
    weight 0, so every rank still runs forward and backward and DDP's gradient all-reduce lines up.
    """

    def __init__(self, task: Any, batches: Sequence[Sequence[int]], rank: int, world: int, seed: int, epoch: int):
        self.task, self.batches = task, batches
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Loaded:
        batch = list(self.batches[i])
        share = batch[self.rank :: self.world]
        live = bool(share)
        if not live:
            share = batch[:1]
        if get_worker_info() is not None:
            # In a worker, randomness (augmentation) depends only on the batch, not on which worker runs it.
            seed_everything(mix_seeds(self.seed, self.epoch, i, self.rank))
        return Loaded(self.task.collate(share), live)


def _identity(x: Any) -> Any:
    return x


def load_batches(dataset: EpochBatches, start: int, num_workers: int, pin: bool) -> Iterable[Loaded]:
    """Batches ``start .. len(dataset) - 1`` of ``dataset`` in order (a resume skips exactly the batches already
    consumed), pinned when ``pin``; through a DataLoader with ``num_workers`` > 0 worker processes."""
    n = len(dataset)
    if num_workers == 0:
        # Without workers a DataLoader only adds per-batch cost; this loads the same batches the same way.
        return (dataset[i].pin_memory() if pin else dataset[i] for i in range(start, n))
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, n),
        num_workers=num_workers,
        pin_memory=pin,
        collate_fn=_identity,
        generator=torch.Generator().manual_seed(dataset.seed),  # keeps the global RNG untouched
    )
