"""What the study measures on a trained cell besides its quality: cost on one training batch and
statistics of the attention weights captured on a few batches.

Cost (``cost``): parameters; forward FLOPs of ``Task.loss`` on the batch (``torch.utils.flop_counter``:
matrix products and convolutions, a multiply-add counts 2); forward and forward+backward median latency and
peak tensor memory (:mod:`seq2seq_attn.timing`, the helper of every benchmark of the project).

Attention statistics (``attention_stats``), from ``capture_attention`` (every module's recorded weights,
any task). Each recorded tensor is read as rows over its last dimension (the keys):

- distributions (rows of non-negative weights summing to 1, e.g. softmax, hard, sampled): ``entropy``
  (nats, mean over rows), ``entropy_ratio`` (entropy / log of the number of keys: 1 = uniform), ``span90``
  (how many keys hold 90 % of a row's mass, mean over rows: the effective span), ``sparsity`` (fraction of
  weights below 1e-3; text batches are padded, so padding keys count as zeros: compare mechanisms on the
  same task only) and, for image attention over an S × S map (or an h × w grid given by the task:
  captioning's feature map), ``spread`` (root mean square distance of the weight from its centre, as a
  fraction of the map side, sqrt(h w) for a grid);
- gates (weights in [0, 1] that are not distributions, e.g. SE, ECA, CBAM): ``gate_mean`` and
  ``gate_sparsity`` (fraction of gates below 0.1);
- other weights (Non-local's ``1/N``-scaled scores, signed gates) give no figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..attention import capture_attention
from ..timing import train_step_costs


def _loss(task: Any, model: nn.Module, batch: Any) -> torch.Tensor:
    return task.loss(model, batch).loss_sum


def cost(task: Any, model: nn.Module, batch: Any, device: torch.device, warmup: int = 1,
         repeats: int = 3) -> dict[str, float | int]:
    """Parameters, forward FLOPs, latency (ms) and peak memory (bytes) of ``task.loss(model, batch)``
    forward (eval mode, no grad) and forward + backward (train mode), and the batch's item count."""
    model.eval()
    with FlopCounterMode(display=False) as counter:  # autograd on: see vision.benchmark.count_flops
        items = task.loss(model, batch).num_items
    flops = int(counter.get_total_flops())

    def forward() -> None:
        with torch.no_grad():
            _loss(task, model, batch)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        _loss(task, model, batch).backward()

    costs = train_step_costs(model, forward, forward_backward, device, warmup, repeats)
    return {"params": sum(p.numel() for p in model.parameters()), "flops": flops, "batch_items": int(items),
            **costs}


def _is_distribution(rows: torch.Tensor) -> bool:
    """Non-negative rows summing to 1 (rows of all zeros, fully masked queries, are dropped before)."""
    return bool((rows >= -1e-6).all()) and bool(torch.allclose(rows.sum(-1), torch.ones(len(rows)), atol=1e-3))


def _spread(rows: torch.Tensor, side: int, width: int | None = None) -> torch.Tensor:
    """Per row, the root mean square distance of the weight (over a side × side map, or side × width,
    row-major) from its weighted centre, divided by ``side`` (sqrt(side · width) for a side × width map):
    (R, side · width) -> (R,)."""
    width = side if width is None else width
    ys, xs = torch.meshgrid(torch.arange(side, dtype=rows.dtype), torch.arange(width, dtype=rows.dtype),
                            indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], -1)  # (N, 2)
    centre = rows @ pos  # (R, 2)
    second = rows @ (pos ** 2)  # (R, 2)
    var = (second - centre ** 2).sum(-1).clamp_min(0.0)
    return var.sqrt() / math.sqrt(side * width)


def _span90(rows: torch.Tensor) -> torch.Tensor:
    """Per row, how many keys (largest first) hold 90 % of the row's mass: (R, N) -> (R,)."""
    sorted_rows = rows.sort(-1, descending=True).values
    return ((sorted_rows.cumsum(-1) < 0.9 - 1e-6).sum(-1) + 1).to(rows.dtype)


def tensor_stats(weights: torch.Tensor, image: bool, grid: tuple[int, int] | None = None
                 ) -> tuple[str, dict[str, float], int]:
    """The statistics of one recorded tensor (see the module doc): (kind "dist" or "gate", sums of each
    figure over rows, row count). Sums, so that several tensors pool into one mean. ``grid`` (h, w): the
    map the rows of h · w keys lie on (default: a square one for image self-attention (B, N, N))."""
    w = weights.detach().float().cpu()
    n = w.shape[-1]
    rows = w.reshape(-1, n)
    rows = rows[rows.abs().sum(-1) > 0]  # fully masked queries give zero rows
    if len(rows) == 0:
        return "none", {}, 0
    if n > 1 and _is_distribution(rows):
        p = rows.clamp_min(0.0)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
        sums = {"entropy": entropy.sum().item(), "entropy_ratio": (entropy / math.log(n)).sum().item(),
                "span90": _span90(p).sum().item(), "sparsity": (p < 1e-3).float().mean(-1).sum().item()}
        side = math.isqrt(n)
        if grid is not None and grid[0] * grid[1] == n:  # rows over the task's h x w map
            sums["spread"] = _spread(p, *grid).sum().item()
        elif image and side * side == n and w.dim() == 3:  # (B, queries, S*S): weights over a square map
            sums["spread"] = _spread(p, side).sum().item()
        return "dist", sums, len(rows)
    if rows.min() < 0.0 or rows.max() > 1.0:  # unnormalized (Non-local's 1/N, tanh gates): no figure
        return "none", {}, 0
    return "gate", {"gate_mean": rows.mean(-1).sum().item(),
                    "gate_sparsity": (rows < 0.1).float().mean(-1).sum().item()}, len(rows)


def pool_stats(maps: dict[str, list[torch.Tensor]], image: bool, grid: tuple[int, int] | None = None
               ) -> dict[str, float]:
    """Means over every row of every recorded tensor of ``maps`` (``capture_attention``'s dict), per kind;
    ``modules``: how many modules recorded weights."""
    totals: dict[str, float] = {}
    counts = {"dist": 0, "gate": 0}
    for calls in maps.values():
        for weights in calls:
            kind, sums, rows = tensor_stats(weights, image, grid)
            if kind == "none":
                continue
            counts[kind] += rows
            for k, v in sums.items():
                totals[k] = totals.get(k, 0.0) + v
    out: dict[str, float] = {"modules": float(sum(1 for calls in maps.values() if calls))}
    for k, v in totals.items():
        rows = counts["gate"] if k.startswith("gate") else counts["dist"]
        out[k] = v / rows
    return out


@torch.no_grad()
def attention_stats(task: Any, model: nn.Module, batches: list[Any], image: bool,
                    grid: tuple[int, int] | None = None) -> dict[str, float]:
    """Statistics of the attention ``model`` (eval mode) puts on ``batches`` through ``task.loss`` (``grid``:
    see :func:`tensor_stats`)."""
    model.eval()
    with capture_attention(model, cpu=True) as maps:
        for batch in batches:
            task.loss(model, batch)
    return pool_stats(maps, image, grid)


def init_and_trained_stats(task: Any, model: nn.Module, batches: list[Any], image: bool, seed: int,
                           device: torch.device, build: Callable[[], nn.Module],
                           grid: tuple[int, int] | None = None) -> dict[str, dict[str, float]]:
    """The statistics before training (a model built fresh with the cell's seed) and after (``model``), on
    the same batches: how the attention changed over training."""
    torch.manual_seed(seed)
    fresh = build().to(device)
    return {"init": attention_stats(task, fresh, batches, image, grid),
            "trained": attention_stats(task, model, batches, image, grid)}
