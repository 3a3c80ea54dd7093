"""The interface every translation model implements: teacher-forced ``forward`` plus incremental decoding.

Search (:mod:`seq2seq_attn.translation.search`) only talks to this interface, so the RNN models and the
Transformer share greedy and beam search. Beams keep a ``(batch, beam)`` layout: the encoder output is computed
once per sentence and never copied per hypothesis; the ``K`` hypotheses of a sentence are ``K`` queries.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Seq2SeqModel(nn.Module):
    """Base class of encoder-decoder translation models.

    Subclasses implement all five methods; ``init_state``/``step`` must give the same log-probabilities as
    ``forward`` on the same prefix (eval mode).
    """

    #: ids of the special tokens, set by the model builder (used by nothing here; search gets them explicitly)
    pad_id: int = 0

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. ``src`` (B, S) long, ``src_pad_mask`` (B, S) bool with True = pad,
        ``tgt_in`` (B, T) long (BOS + target[:-1]) -> logits (B, T, V)."""
        raise NotImplementedError

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> Any:
        """Encode the source once per sentence; the result is passed back to ``init_state`` and ``step``."""
        raise NotImplementedError

    def init_state(self, enc: Any, beam_size: int) -> Any:
        """Decoder state for ``beam_size`` hypotheses per sentence (all identical at the start)."""
        raise NotImplementedError

    def step(self, prev_tokens: torch.Tensor, state: Any, enc: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """One decoding step. ``prev_tokens`` (B, K) -> log_probs (B, K, V), new state, attention (B, K, S)."""
        raise NotImplementedError

    def reorder_state(self, state: Any, beam_index: torch.Tensor) -> Any:
        """Hypothesis ``k`` of sentence ``b`` continues old hypothesis ``beam_index[b, k]`` ((B, K) long)."""
        raise NotImplementedError


def gather_beams(x: torch.Tensor, beam_index: torch.Tensor, batch_dim: int = 0) -> torch.Tensor:
    """Reorder hypotheses: ``x`` has batch at ``batch_dim`` and beams right after it; returns ``x`` with
    ``x[b, k] <- x[b, beam_index[b, k]]`` for any leading/trailing dimensions."""
    moved = x.movedim((batch_dim, batch_dim + 1), (0, 1))  # (B, K, ...)
    index = beam_index.view(*beam_index.shape, *([1] * (moved.dim() - 2))).expand(-1, -1, *moved.shape[2:])
    return moved.gather(1, index).movedim((0, 1), (batch_dim, batch_dim + 1))
