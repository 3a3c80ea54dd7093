"""The attention abstraction used by every model in the project: score -> normalize -> aggregate.

``Attention(score, normalize, dropout)(query, keys, values, mask)`` returns ``(context, weights)``:

1. score each key against each query: ``scores = score(query, keys)``        # (..., Tq, Tk)
2. normalize the scores into weights:   ``weights = normalize(scores, mask)`` # (..., Tq, Tk)
3. aggregate the values:                ``context = dropout(weights) @ values`` # (..., Tq, Dv)
"""

from __future__ import annotations

import torch
from torch import nn

from .capture import RecordsAttention
from .normalize import Softmax
from .scores import Score


def merge_masks(key_padding_mask: torch.Tensor | None, attn_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Combine a (B, Tk) key padding mask and a (Tq, Tk) / (B, Tq, Tk) attention mask into one boolean mask
    broadcastable to (B, Tq, Tk). ``True`` means "not allowed to attend" in all three."""
    mask = None
    if key_padding_mask is not None:
        mask = key_padding_mask.bool().unsqueeze(-2)  # (B, 1, Tk)
    if attn_mask is not None:
        attn_mask = attn_mask.bool()
        mask = attn_mask if mask is None else mask | attn_mask
    return mask


class Attention(RecordsAttention):
    """Generic attention: a score module, a normalizer and optional dropout on the weights.

    Args:
        score: maps ``(query, keys)`` to scores, see :mod:`seq2seq_attn.attention.scores`.
        normalize: maps ``(scores, mask)`` to weights; masked softmax by default.
        dropout: dropout probability applied to the weights before aggregation (training only).
    """

    def __init__(self, score: Score, normalize: nn.Module | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.score = score
        self.normalize = normalize if normalize is not None else Softmax()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self,
        query: torch.Tensor,  # (..., Tq, Dq)
        keys: torch.Tensor,  # (..., Tk, Dk)
        values: torch.Tensor | None = None,  # (..., Tk, Dv); defaults to keys
        mask: torch.Tensor | None = None,  # bool, broadcastable to (..., Tq, Tk); True = masked
        projected_keys: torch.Tensor | None = None,  # score.project_keys(keys), if already computed
        bias: torch.Tensor | None = None,  # float, added to the scores (e.g. relative positions)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if projected_keys is None:
            projected_keys = self.score.project_keys(keys)
        scores = self.score.score(query, projected_keys)  # (..., Tq, Tk)
        if bias is not None:
            scores = scores + bias
        weights = self.normalize(scores, mask)  # (..., Tq, Tk)
        self.record(weights)
        values = keys if values is None else values
        context = self.dropout(weights) @ values  # (..., Tq, Dv)
        return context, weights
