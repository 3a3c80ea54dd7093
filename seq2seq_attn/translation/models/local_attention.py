"""Luong et al., 2015, "Effective Approaches to Attention-based Neural Machine Translation", section 3.2:
local attention. At target step ``t`` an aligned source position ``p_t`` is chosen and only the window
``[p_t - D, p_t + D]`` is attended:

- local-m (monotonic): ``p_t = t`` (clamped to the last source position);
- local-p (predictive): ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))`` with ``S`` the source length, and the
  window weights are multiplied by a Gaussian ``exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = D / 2``
  (not renormalized, as in the paper).

Scores and the masked softmax are the attention core's; the window is a mask on top of the padding mask.
"""

from __future__ import annotations

import torch
from torch import nn

from ...attention import Attention, RecordsAttention
from ...attention.scores import Score


class LocalAttention(RecordsAttention):
    def __init__(self, score: Score, mode: str, window: int, query_dim: int) -> None:
        super().__init__()
        if mode not in ("local-m", "local-p"):
            raise ValueError(f"local attention mode must be local-m or local-p, got {mode!r}")
        self.core = Attention(score)
        self.score = score  # same module as core.score: decoders call score.project_keys once per sentence
        self.mode, self.window = mode, window
        if mode == "local-p":
            self.predict = nn.Sequential(nn.Linear(query_dim, query_dim), nn.Tanh(),
                                         nn.Linear(query_dim, 1, bias=False))

    def positions(self, query: torch.Tensor, step: int, src_lens: torch.Tensor) -> torch.Tensor:
        """Aligned positions ``p_t`` (B, K) for queries (B, K, D) at target step ``step``."""
        lens = src_lens.to(query.dtype).unsqueeze(-1)  # (B, 1)
        if self.mode == "local-m":
            return torch.minimum(torch.full_like(lens, float(step)), lens - 1).expand(-1, query.size(1))
        return lens * torch.sigmoid(self.predict(query)).squeeze(-1)  # (B, K)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, projected_keys: torch.Tensor,
                step: int, src_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, K, Dq), keys (B, S, Dk), mask (B, 1, S) True = pad -> context (B, K, Dk), weights (B, K, S)."""
        p = self.positions(query, step, src_lens)  # (B, K)
        src_pos = torch.arange(keys.size(1), device=keys.device, dtype=query.dtype)  # (S,)
        dist = src_pos - p.unsqueeze(-1)  # (B, K, S)
        outside = dist.abs() > self.window
        _, weights = self.core(query, keys, keys, mask | outside, projected_keys)  # (B, K, S)
        if self.mode == "local-p":
            sigma = self.window / 2.0
            weights = weights * torch.exp(-(dist**2) / (2 * sigma**2))
        self.record(weights)
        return weights @ keys, weights  # (B, K, Dk)
