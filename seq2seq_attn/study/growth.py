"""Cost growth: each mechanism's time and peak memory as the number of positions N grows, the fitted growth
exponent, and where each runs out of memory (``seq2seq-attn study growth CONFIG``).

Text mechanisms attend over a sequence of N tokens (B, N, D): self-attention through the core's weights path
with each score function (N queries × N keys), Luong's local-p window (the core masks a full score matrix),
the classifiers' learned-query pooling (1 query × N keys), the no-attention baseline (uniform weights), and
``F.scaled_dot_product_attention`` (on CUDA also pinned to its flash, memory-efficient and math kernels).
Image mechanisms are the registered vision modules on a (B, C, S, S) map, N = S² positions.

A size is measured with :mod:`seq2seq_attn.timing` (median forward and forward+backward time, peak tensor
memory of the forward). Before each size the peak memory and time are predicted from the last two sizes
(power law); a size predicted above ``memory_cap_mb`` or ``time_cap_s`` is recorded as out of budget and the
mechanism stops growing, as it does after a real out-of-memory error. The growth exponent ``k`` of
``time ≈ c N^k`` is the least-squares slope of log time on log N (:func:`fit_exponent`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attention import Attention, build_normalizer, build_score
from ..timing import median_seconds, peak_memory
from ..training.config import cpu_threads
from .config import GrowthConfig

TEXT = ("dot", "scaled_dot", "general", "additive", "local_p", "pooling", "uniform", "sdpa")
SDPA_KERNELS = ("sdpa_flash", "sdpa_efficient", "sdpa_math")  # CUDA only
IMAGE = ("non_local", "non_local_dot", "non_local_concat", "criss_cross", "apnb", "gc", "se", "eca",
         "cbam")
MECHANISMS = TEXT + SDPA_KERNELS + IMAGE


def fit_exponent(sizes: list[float], values: list[float]) -> tuple[float, float]:
    """Least-squares fit of ``log value = log c + k log size``; returns (k, c). Needs two or more distinct
    sizes with positive values (``ValueError`` otherwise)."""
    x = np.log(np.asarray(sizes, dtype=float))
    y = np.asarray(values, dtype=float)
    if len(set(x.tolist())) < 2 or (y <= 0).any():
        raise ValueError("fit_exponent: needs two or more distinct sizes and positive values")
    k, log_c = np.polyfit(x, np.log(y), 1)
    return float(k), float(math.exp(log_c))


def predict(sizes: list[int], values: list[float], size: int) -> float:
    """``values`` extrapolated to ``size`` by the power law through the last two points (quadratic growth
    assumed from a single point)."""
    if len(sizes) >= 2 and values[-2] > 0 and values[-1] > 0:
        k = math.log(values[-1] / values[-2]) / math.log(sizes[-1] / sizes[-2])
    else:
        k = 2.0
    return values[-1] * (size / sizes[-1]) ** max(k, 0.0)


class _SelfAttention(nn.Module):
    """Core self-attention over a sequence: ``Attention(score, normalize)(x, x, x)`` (weights path)."""

    def __init__(self, attention: Attention) -> None:
        super().__init__()
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        return self.attention(x, x, x)[0]


class _Pooling(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        from ..classification.models.pooling import QueryAttentionPooling

        self.pool = QueryAttentionPooling(dim, "additive")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, D)
        return self.pool(x, torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device))[0]


class _SDPA(nn.Module):
    """``F.scaled_dot_product_attention`` on one head; ``kernel`` pins a CUDA backend."""

    def __init__(self, kernel: str | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.scale = nn.Parameter(torch.ones(1))  # something to differentiate, as the other mechanisms have

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        q = (x * self.scale).unsqueeze(1)  # (B, 1, N, D)
        if self.kernel is None:
            return F.scaled_dot_product_attention(q, q, q).squeeze(1)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
                   "sdpa_math": SDPBackend.MATH}[self.kernel]
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, q, q).squeeze(1)


def build_mechanism(name: str, cfg: GrowthConfig) -> nn.Module:
    """The module of mechanism ``name`` (text: dimension ``cfg.dim``; images: ``cfg.channels`` channels)."""
    d = cfg.dim
    if name in ("dot", "scaled_dot", "general", "additive"):
        return _SelfAttention(Attention(build_score(name, d, d, d)))
    if name == "uniform":
        return _SelfAttention(Attention(build_score("dot", d, d), build_normalizer("uniform")))
    if name == "local_p":
        from ..translation.models.local_attention import LocalAttention

        return _SelfAttention(LocalAttention(build_score("scaled_dot", d, d), "local-p", 8, d))
    if name == "pooling":
        return _Pooling(d)
    if name == "sdpa" or name in SDPA_KERNELS:
        return _SDPA(None if name == "sdpa" else name)
    if name in IMAGE:
        from vision.registry import create_attention

        return create_attention(name, cfg.channels)
    raise ValueError(f"growth.mechanisms: unknown mechanism {name!r} (known: {', '.join(MECHANISMS)})")


def positions_of(name: str, cfg: GrowthConfig) -> list[int]:
    """The sizes of mechanism ``name``: sequence lengths (text) or map sides (images)."""
    return list(cfg.image_sides) if name in IMAGE else list(cfg.text_lengths)


def _input(name: str, size: int, cfg: GrowthConfig, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (cfg.batch, cfg.channels, size, size) if name in IMAGE else (cfg.batch, size, cfg.dim)
    return torch.randn(*shape, generator=g).to(device)


@dataclass
class GrowthPoint:
    """One size of one mechanism: N positions; times in ms and peak memory in bytes, or ``status`` saying
    why it was not measured (``oom``, ``over memory cap``, ``over time cap``, ``error: ...``)."""

    positions: int
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    fwd_peak: int | None = None
    status: str = "ok"


@dataclass
class GrowthRow:
    """A mechanism's points, its fitted time and memory exponents, and the first size it could not run."""

    mechanism: str
    modality: str
    points: list[GrowthPoint] = field(default_factory=list)
    time_exponent: float | None = None
    memory_exponent: float | None = None
    limit: str = ""
    tail_time_exponent: float | None = None  # slope between the two largest sizes (fixed overheads matter less)

    def fit(self) -> None:
        ok = [p for p in self.points if p.status == "ok"]
        if len({p.positions for p in ok}) >= 2:
            self.time_exponent = fit_exponent([p.positions for p in ok], [max(p.fwd_ms, 1e-6) for p in ok])[0]
            tail = ok[-2:]
            self.tail_time_exponent = fit_exponent([p.positions for p in tail],
                                                   [max(p.fwd_ms, 1e-6) for p in tail])[0]
            if all(p.fwd_peak for p in ok):
                self.memory_exponent = fit_exponent([p.positions for p in ok], [p.fwd_peak for p in ok])[0]


def _measure(module: nn.Module, x: torch.Tensor, device: torch.device, cfg: GrowthConfig) -> GrowthPoint:
    """Forward and forward+backward (gradients of the parameters and the input, so that mechanisms
    without parameters have a backward pass too)."""
    x = x.requires_grad_(cfg.backward)

    def forward() -> None:
        with torch.no_grad():
            module(x)

    def forward_backward() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).float().sum().backward()

    fwd = median_seconds(forward, device, cfg.warmup, cfg.repeats)
    peak = peak_memory(forward, device)
    both = median_seconds(forward_backward, device, cfg.warmup, cfg.repeats) if cfg.backward else None
    return GrowthPoint(0, 1e3 * fwd, None if both is None else 1e3 * both, peak)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower() or \
        isinstance(e, MemoryError)


def grow(name: str, cfg: GrowthConfig, device: torch.device, log: Callable[[str], None] = print) -> GrowthRow:
    """Measure mechanism ``name`` at each of its sizes (see the module doc); stops at the first size over
    the caps or out of memory, recorded in ``limit``."""
    row = GrowthRow(name, "image" if name in IMAGE else "text")
    torch.manual_seed(0)
    module = build_mechanism(name, cfg).to(device)
    done_n: list[int] = []
    for size in positions_of(name, cfg):
        n = size * size if name in IMAGE else size
        if done_n:
            ok = [p for p in row.points if p.status == "ok"]
            mem = predict(done_n, [float(p.fwd_peak or 1) for p in ok], n) / 2**20
            sec = predict(done_n, [p.fwd_ms / 1e3 for p in ok], n) * (cfg.warmup + 2 * cfg.repeats + 1)
            status = ("over memory cap" if mem > cfg.memory_cap_mb else
                      "over time cap" if sec > cfg.time_cap_s else "")
            if status:
                row.points.append(GrowthPoint(n, status=f"{status} (predicted {mem:,.0f} MiB, {sec:.0f} s)"))
                row.limit = f"N = {n:,}: {status}"
                break
        try:
            point = _measure(module, _input(name, size, cfg, device), device, cfg)
        except Exception as e:  # out of memory (CUDA, or an allocation the host refused) ends the growth
            label = "oom" if _is_oom(e) else f"error: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
            row.points.append(GrowthPoint(n, status=label))
            row.limit = f"N = {n:,}: {label}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
            break
        point.positions = n
        row.points.append(point)
        done_n.append(n)
        log(f"  {name} N={n:,}: fwd {point.fwd_ms:.2f} ms, peak {point.fwd_peak / 2**20:.1f} MiB")
    row.fit()
    return row


def available(names: list[str], device: torch.device) -> list[str]:
    """``names`` without the CUDA-only SDPA kernels when ``device`` is not CUDA."""
    return [n for n in names if n not in SDPA_KERNELS or device.type == "cuda"]


def run_growth(cfg: GrowthConfig, log: Callable[[str], None] = print) -> list[GrowthRow]:
    """Every configured mechanism's growth (``cfg.threads`` CPU threads); rows as plain data in
    :func:`rows_to_dict`."""
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("growth.device: cuda is not available here (use cpu)")
    names = available(list(cfg.mechanisms or MECHANISMS), device)
    for name in names:
        if name not in MECHANISMS:
            raise ValueError(f"growth.mechanisms: unknown mechanism {name!r} (known: {', '.join(MECHANISMS)})")
    rows = []
    with cpu_threads(cfg.threads if device.type == "cpu" else None):
        for name in names:
            log(f"growth: {name}")
            rows.append(grow(name, cfg, device, log))
    return rows


def rows_to_dict(rows: list[GrowthRow]) -> list[dict]:
    return [asdict(r) for r in rows]


def rows_from_dict(data: list[dict]) -> list[GrowthRow]:
    """Rows read back from ``growth.json``; the fits are recomputed from the points."""
    rows = [GrowthRow(**{**d, "points": [GrowthPoint(**p) for p in d["points"]]}) for d in data]
    for row in rows:
        row.fit()
    return rows
