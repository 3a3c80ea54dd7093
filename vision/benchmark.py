"""Cost of a vision model at one input size: parameters, forward FLOPs, latency and peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions only; a
multiply-add counts 2, elementwise gating is not counted). Latency is the median of ``repeats`` calls after
``warmup`` calls and peak memory the tensor memory above the level before the call, both measured with
:mod:`seq2seq_attn.timing` (the helper every benchmark of the project uses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seq2seq_attn.timing import train_step_costs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs of ``model(x)`` (a multiply-add counts 2), in eval mode.

    Autograd stays on: under ``no_grad`` a view of a parameter (e.g. an expanded learned query) requires grad
    without a grad_fn, which the counter's module tracker rejects. Only the forward pass is counted.
    """
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())



def benchmark(model: nn.Module, input_size: list[int], num_classes: int, device: torch.device,
              warmup: int = 2, repeats: int = 5) -> dict[str, float | int]:
    """Parameters, forward FLOPs per image, latency (ms) and peak memory (bytes) at ``input_size`` (B, C, H, W)."""
    model = model.to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*input_size, generator=g).to(device)
    y = torch.randint(0, num_classes, (input_size[0],), generator=g).to(device)
    flops = count_flops(model, x) // input_size[0]

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)  # gradients are allocated inside the call, as in training
        F.cross_entropy(model(x), y).backward()

    costs = train_step_costs(model, forward, forward_backward, device, warmup, repeats)
    return {"params": count_parameters(model), "flops": flops, **costs}
