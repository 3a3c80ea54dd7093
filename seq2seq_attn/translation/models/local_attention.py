"""Luong et al., 2015, "Effective Approaches to Attention-based Neural Machine Translation", section 3.2:
local attention. At target step ``t`` an aligned source position ``p_t`` is chosen and only the window
``[p_t - D, p_t + D]`` is attended:

- local-m (monotonic): ``p_t = t`` (clamped to the last source position);
- local-p (predictive): ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))`` with ``S`` the source length, and the
  window weights are multiplied by a Gaussian ``exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = D / 2``
  (not renormalized, as in the paper).

A subclass of the core ``Attention``: its score, normalizer and aggregation are the core's; the window is a
mask on top of the padding mask, and local-p reweights the normalized weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...attention import Attention
from ...attention.core import combine_masks, split_mask
from ...attention.scores import Score


class LocalAttention(Attention):
    """Local attention of mode ``local-m`` or ``local-p`` with half-width ``window`` (D).

    Args:
        score: the core score function (dot, general, concat, ...).
        mode: ``local-m`` or ``local-p``.
        window: half-width D of the window, in source positions.
        query_dim: size of the decoder state (local-p's position predictor).
        normalize: the core normalizer (masked softmax by default).

    Raises:
        ValueError: unknown mode.
    """

    def __init__(self, score: Score, mode: str, window: int, query_dim: int,
                 normalize: nn.Module | None = None) -> None:
        super().__init__(score, normalize)
        if mode not in ("local-m", "local-p"):
            raise ValueError(f"local attention mode must be local-m or local-p, got {mode!r}")
        self.mode, self.window = mode, window
        if mode == "local-p":
            self.predict = nn.Sequential(nn.Linear(query_dim, query_dim), nn.Tanh(),
                                         nn.Linear(query_dim, 1, bias=False))

    def positions(self, query: torch.Tensor, step: int | None, src_lens: torch.Tensor) -> torch.Tensor:
        """Aligned positions ``p_t`` (B, K) for queries (B, K, D) at target step ``step``; src_lens (B,)."""
        lens = src_lens.to(query.dtype).unsqueeze(-1)  # (B, 1)
        if self.mode == "local-m":
            return torch.minimum(torch.full_like(lens, float(step)), lens - 1).expand(-1, query.size(1))
        return lens * torch.sigmoid(self.predict(query)).squeeze(-1)  # (B, K)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, projected_keys: torch.Tensor | None = None,
                bias: torch.Tensor | None = None, step: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, K, Dq), keys (B, S, Dk), mask (B, 1, S) key padding (True or -inf = pad; the source
        lengths are read from it), ``step`` the target step t (required by local-m) -> context (B, K, Dv),
        weights (B, K, S)."""
        if step is None and self.mode == "local-m":
            raise ValueError("local-m attention needs the target step (step=)")
        not_allowed, _ = split_mask(mask)
        if not_allowed is None:
            src_lens = torch.full(keys.shape[:1], keys.size(1), device=keys.device)
        else:
            src_lens = (~not_allowed[:, 0]).sum(-1)  # (B,)
        p = self.positions(query, step, src_lens)  # (B, K)
        src_pos = torch.arange(keys.size(1), device=keys.device, dtype=query.dtype)  # (S,)
        dist = src_pos - p.unsqueeze(-1)  # (B, K, S)
        outside = dist.abs() > self.window
        weights = self.attention_weights(query, keys, combine_masks(mask, outside), projected_keys, bias)  # (B, K, S)
        if self.mode == "local-p":
            sigma = self.window / 2.0
            weights = weights * torch.exp(-(dist**2) / (2 * sigma**2))
        self.record(weights)
        return self.aggregate(weights, keys if values is None else values), weights  # (B, K, Dv)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # Runs saved before this class derived from Attention held the score twice, as "score" and "core.score".
        for key in [k for k in state_dict if k.startswith(prefix + "core.score.")]:
            state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args)
