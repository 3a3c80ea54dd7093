"""Ensembles of translation models: one :class:`~seq2seq_attn.translation.models.base.Seq2SeqModel` whose
next-token log-probabilities are the average of its members' (renormalized), so every search option works on
ensembles unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Seq2SeqModel


class EnsembleModel(Seq2SeqModel):
    """Averages the log-probabilities of ``models`` (all with the same source and target vocabularies):
    ``log p(y) = log_softmax(mean_m log p_m(y))``, the normalized geometric mean of the members'
    distributions. The attention returned by ``step`` is the mean of the members' attention.

    Raises ``ValueError`` for fewer than two members or different target vocabulary sizes.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least two models, got {len(models)}")
        self.models = nn.ModuleList(models)
        self.pad_id = getattr(models[0], "pad_id", 0)

    @staticmethod
    def combine(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Members' log-probabilities (..., V) each -> the ensemble's (..., V)."""
        sizes = {lp.size(-1) for lp in log_probs}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members have different target vocabulary sizes: {sorted(sizes)}")
        return F.log_softmax(torch.stack(list(log_probs)).float().mean(0), dim=-1)

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the ensemble's log-probabilities (B, T, V) (valid logits: they are normalized)."""
        return self.combine([F.log_softmax(m(src, src_pad_mask, tgt_in).float(), -1) for m in self.models])

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> list[Any]:
        return [m.encode(src, src_pad_mask) for m in self.models]

    def init_state(self, enc: list[Any], beam_size: int) -> list[Any]:
        return [m.init_state(e, beam_size) for m, e in zip(self.models, enc)]

    def step(self, prev_tokens: torch.Tensor, state: list[Any], enc: list[Any]
             ) -> tuple[torch.Tensor, list[Any], torch.Tensor]:
        """prev_tokens (B, K) -> averaged log-probs (B, K, V), the members' states, mean attention (B, K, S)."""
        outs = [m.step(prev_tokens, s, e) for m, s, e in zip(self.models, state, enc)]
        attention = torch.stack([o[2].float() for o in outs]).mean(0)
        return self.combine([o[0] for o in outs]), [o[1] for o in outs], attention

    def reorder_state(self, state: list[Any], beam_index: torch.Tensor) -> list[Any]:
        return [m.reorder_state(s, beam_index) for m, s in zip(self.models, state)]
