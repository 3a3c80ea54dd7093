"""One way to read the attention weights of any model: ``capture_attention``.

Every module that produces attention weights derives from :class:`RecordsAttention` and calls
``self.record(weights)``. Outside a capture that is a single ``None`` check. Inside
``with capture_attention(model) as maps:`` each armed module appends its (detached) weights to
``maps[module_name]``, one entry per forward call (RNN decoders call once per target step). Modules that can
skip computing weights (multi-head attention's fused path) check ``self.capturing`` and take the weights
path only while armed.

Only the outermost recording modules are armed: a multi-head attention records its per-head weights, not
the inner core ``Attention`` that computes them as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class RecordsAttention(nn.Module):
    """Mixin base for modules whose attention weights can be captured."""

    _capture_store: list[torch.Tensor] | None = None

    @property
    def capturing(self) -> bool:
        return self._capture_store is not None

    def record(self, weights: torch.Tensor) -> None:
        store = self._capture_store
        if store is not None:
            store.append(weights.detach())


@contextmanager
def capture_attention(model: nn.Module, cpu: bool = False) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the attention weights of every attention module in ``model`` while the block runs.

    Yields a dict ``{module_name: [weights of each call]}``; names are ``model.named_modules()`` names
    (``""`` for ``model`` itself). With ``cpu=True`` the weights are moved to the CPU as they are recorded.
    """
    maps: dict[str, list[torch.Tensor]] = {}
    armed: list[RecordsAttention] = []
    armed_prefixes: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, RecordsAttention):
            continue
        if any(name == p or name.startswith(p + ".") for p in armed_prefixes if p) or "" in armed_prefixes:
            continue  # nested inside a module that records already
        store: list[torch.Tensor] = _CpuList() if cpu else []
        maps[name] = store
        module._capture_store = store
        armed.append(module)
        armed_prefixes.append(name)
    try:
        yield maps
    finally:
        for module in armed:
            module._capture_store = None


class _CpuList(list):
    def append(self, item: torch.Tensor) -> None:  # type: ignore[override]
        super().append(item.to("cpu"))
