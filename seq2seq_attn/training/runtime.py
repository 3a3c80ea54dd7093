"""Devices, precision, seeding, RNG states, batch transfer and the distributed process group."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# ------------------------------------------------------------------------------------------------- devices


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """ "auto" picks CUDA (``cuda:LOCAL_RANK`` under torchrun), then MPS, then CPU; others are checked."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"training.device: unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"training.device: {name!r} requested but CUDA is not available")
        index = device.index if device.index is not None else local_rank % torch.cuda.device_count()
        if index >= torch.cuda.device_count():
            raise ValueError(f"training.device: {name!r} but only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"training.device: {name!r} requested but MPS is not available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"training.device: unsupported device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    return device


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed)."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"  # CPU autocast is slower than fp32 for most models; MPS bf16 support varies
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("training.precision: bf16 is not supported on this GPU; use fp16 or auto")
        return torch.bfloat16, False
    if precision == "fp16":
        return torch.float16, device.type in ("cuda", "cpu", "mps")
    raise ValueError(f"training.precision: unknown precision {precision!r}")


# -------------------------------------------------------------------------------------------- randomness


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(flag: bool) -> None:
    """Deterministic algorithms (slower; errors on ops that have none). cuBLAS needs a fixed workspace."""
    if flag:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(flag)
    torch.backends.cudnn.deterministic = flag
    torch.backends.cudnn.benchmark = False if flag else torch.backends.cudnn.benchmark


def rng_state() -> dict:
    """All RNG states in types that ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def mix_seeds(*values: int) -> int:
    """A 63-bit seed from several integers (stable across processes, unlike ``hash``)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h >> 1


def seed_rank_streams(saved: Sequence[dict] | None, rank: int, world_size: int, seed: int, step: int) -> None:
    """Set this rank's RNG streams (dropout, augmentation) at the start of training.

    ``saved``: every rank's states from the checkpoint being resumed (``None`` for a fresh run). With the same
    world size each rank continues its own stream exactly; otherwise each rank seeds its own stream from
    (seed, step, rank) with a warning that the continuation is not bit-identical. Rank 0 of a fresh run
    continues from ``seed``.
    """
    if saved is not None and len(saved) == world_size:
        set_rng_state(saved[rank])
        return
    if saved is not None:
        warnings.warn(f"resuming with {world_size} processes instead of {len(saved)}: RNG streams restart, so "
                      "the continuation is not bit-identical", stacklevel=3)
    seed_everything(mix_seeds(seed, step, rank) if rank or step else seed)


@contextlib.contextmanager
def preserve_rng() -> Iterator[None]:
    """Run a block without disturbing any global RNG (evaluation, building the epoch's batch list)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


# ------------------------------------------------------------------------------------------ batch transfer


def map_tensors(
    batch: Any, fn: Callable[[torch.Tensor], torch.Tensor], other: Callable[[Any], Any] | None = None
) -> Any:
    """Apply ``fn`` to every tensor in a nested batch: mappings, lists, tuples, namedtuples, dataclasses.

    ``other`` handles any remaining object (e.g. a task's own batch class with a ``to`` method).
    """

    def walk(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return fn(x)
        if isinstance(x, Mapping):
            mapped = {k: walk(v) for k, v in x.items()}
            return mapped if type(x) is dict else type(x)(mapped)
        if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
            return type(x)(*(walk(v) for v in x))
        if isinstance(x, (list, tuple)):
            return type(x)(walk(v) for v in x)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            changes = {f.name: walk(getattr(x, f.name)) for f in dataclasses.fields(x) if f.init}
            return dataclasses.replace(x, **changes)
        return other(x) if other is not None else x

    return walk(batch)


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested) batch to ``device``; 4-d tensors optionally to channels_last."""

    def move(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device, non_blocking=non_blocking)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

    def other(x: Any) -> Any:
        to = getattr(x, "to", None)
        return to(device, non_blocking=non_blocking) if callable(to) else x

    return map_tensors(batch, move, other)


def pin_batch(batch: Any) -> Any:
    """Page-locked copies of every tensor (dataclasses included, which DataLoader's own pinning skips)."""

    def other(x: Any) -> Any:
        pin = getattr(x, "pin_memory", None)
        return pin() if callable(pin) else x

    return map_tensors(batch, lambda t: t.pin_memory(), other)


# ------------------------------------------------------------------------------------------- distribution


@dataclasses.dataclass
class DistContext:
    """Rank and world size; a process group is started when ``torchrun`` set WORLD_SIZE > 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started_here: bool = False

    @classmethod
    def from_env(cls) -> DistContext:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        world = int(os.environ.get("WORLD_SIZE", 1))
        return cls(int(os.environ.get("RANK", 0)), world, int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        if not self.enabled or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)
        self.started_here = True

    def shutdown(self) -> None:
        if self.started_here and dist.is_initialized():
            dist.destroy_process_group()
            self.started_here = False

    def wrap(self, model: torch.nn.Module, device: torch.device, find_unused_parameters: bool) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when distributed (gradients all-reduced in backward), else itself."""
        if not self.enabled:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       find_unused_parameters=find_unused_parameters)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(values)
        return values

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def total_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm over all ``tensors`` as one 0-dim float32 tensor on their device, without a host sync
    (``torch._foreach_norm``, as ``clip_grad_norm_``); inf or NaN when any element is."""
    norms = torch._foreach_norm(list(tensors))
    return torch.linalg.vector_norm(torch.stack([n.to(torch.float32) for n in norms]))
