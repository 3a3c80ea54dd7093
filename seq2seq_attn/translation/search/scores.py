"""Step-score rules of the search: penalties and constraints on the next-token log-probabilities of each
hypothesis, and the penalties of finished hypotheses. Shapes: ``lp`` (B, K, V) log-probabilities of the next
token for K hypotheses of B sentences, ``history`` (B, K, t) their tokens so far (without BOS).
"""

from __future__ import annotations

import torch


def length_penalty(length: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016, eq. 14); ``length`` counts the
    output tokens including EOS."""
    return ((5.0 + length) / 6.0) ** alpha


def coverage_penalty(attention: torch.Tensor, beta: float) -> float:
    """GNMT coverage penalty ``beta * sum_i log(min(sum_j a_ji, 1))`` (Wu et al., 2016, eq. 14).

    ``attention`` (T, S): one row per output token (including EOS), one column per source position. A source
    position that got no attention at all counts as ``log(tiny)`` of the float type, not ``-inf``.
    """
    if beta == 0:
        return 0.0
    coverage = attention.float().sum(0).clamp(max=1.0).clamp_min(torch.finfo(torch.float32).tiny)  # (S,)
    return beta * float(coverage.log().sum())


def penalize_repetitions(lp: torch.Tensor, history: torch.Tensor, theta: float) -> torch.Tensor:
    """Repetition penalty (CTRL, Keskar et al., 2019) on log-probabilities: tokens already in a hypothesis get
    ``theta * lp`` (``lp <= 0``, so less likely for ``theta > 1``)."""
    if theta == 1.0 or history.size(-1) == 0:
        return lp
    seen = torch.zeros_like(lp, dtype=torch.bool).scatter_(-1, history, True)  # (B, K, V)
    return torch.where(seen, lp * theta, lp)


def block_repeated_ngrams(lp: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """No repeated n-gram: a token that would complete an n-gram already in the hypothesis gets ``-inf``
    (the last ``n - 1`` tokens are compared with every earlier ``n - 1``-gram; n = 1 bans every seen token)."""
    t = history.size(-1)
    if n <= 0 or t < n:
        return lp
    grams = history.unfold(-1, n, 1)  # (B, K, t - n + 1, n): every n-gram so far
    last = history[..., t - (n - 1):]  # (B, K, n - 1): the n-gram being completed
    match = (grams[..., : n - 1] == last.unsqueeze(2)).all(-1)  # (B, K, t - n + 1)
    banned = torch.zeros_like(lp).scatter_add_(-1, grams[..., n - 1], match.to(lp.dtype)) > 0  # (B, K, V)
    return lp.masked_fill(banned, float("-inf"))


def force_tokens(lp: torch.Tensor, raw_lp: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """Only the token ``forced[b]`` (B,) may follow in sentence b (every hypothesis); ``forced[b] < 0`` leaves
    the sentence free. The forced token keeps the model's log-probability ``raw_lp`` (no penalty applies)."""
    free = forced < 0  # (B,)
    if bool(free.all()):
        return lp
    index = forced.clamp_min(0).view(-1, 1, 1).expand(-1, lp.size(1), 1)  # (B, K, 1)
    only = torch.full_like(lp, float("-inf")).scatter_(-1, index, raw_lp.gather(-1, index))
    return torch.where(free.view(-1, 1, 1), lp, only)


def prefix_column(prefix: torch.Tensor, t: int) -> torch.Tensor:
    """The token forced at step ``t`` per sentence: ``prefix`` (B, P) padded with -1 -> (B,) (-1 = free)."""
    if t >= prefix.size(1):
        return torch.full((prefix.size(0),), -1, dtype=torch.long, device=prefix.device)
    return prefix[:, t]
