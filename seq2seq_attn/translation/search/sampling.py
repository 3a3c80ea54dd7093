"""Sampling the next token: temperature, top-k and nucleus (top-p) filtering (Holtzman et al., 2020,
"The Curious Case of Neural Text Degeneration"), seeded draws."""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """``logits`` (..., V) with every token outside the ``top_k`` most probable (0 = no limit) and outside the
    smallest set whose probability reaches ``top_p`` (1 = no limit) set to ``-inf``. The most probable token
    always stays."""
    if 0 < top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # probability of the more probable tokens
        drop_sorted = before >= top_p  # the first token has before = 0 < top_p: never dropped
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(scores: torch.Tensor, lp: torch.Tensor, temperature: float, top_k: int, top_p: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One token for each of the K hypotheses: ``scores`` (B, K) so far, ``lp`` (B, K, V) step scores ->
    candidate scores ``scores + lp[token]`` (B, K), their hypothesis (B, K) = k, and the tokens (B, K).
    Tokens are drawn from ``softmax(filter(lp / temperature))``."""
    b, k, v = lp.shape
    probs = filter_logits(lp / temperature, top_k, top_p).softmax(-1)  # (B, K, V)
    tokens = torch.multinomial(probs.view(b * k, v), 1, generator=generator).view(b, k)
    cand = scores + lp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (B, K)
    beams = torch.arange(k, device=lp.device).expand(b, k)
    return cand, beams, tokens
