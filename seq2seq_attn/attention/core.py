"""The attention abstraction used by every model in the project: score -> normalize -> aggregate.

``Attention(score, normalize, dropout)(query, keys, values, mask)`` returns ``(context, weights)``:

1. project the keys once:              ``projected = attention.project_keys(keys)``   # (..., Tk, *)
2. score each key against each query:  ``scores = score.score(query, projected)``    # (..., Tq, Tk)
3. normalize the scores into weights:  ``weights = normalize(scores, mask)``         # (..., Tq, Tk)
4. aggregate the values:               ``context = attention.aggregate(weights, values)``
                                       (default ``dropout(weights) @ values``)       # (..., Tq, Dv)

Each step is a method that a subclass can override (Luong's local attention, criss-cross attention, selective
kernels do), so variants reuse the others instead of repeating the forward pass.

One mask rule for the whole project (``torch.nn.MultiheadAttention``'s): a mask is boolean, ``True`` = "not
allowed to attend", or float, added to the scores, where ``-inf`` = "not allowed to attend". A query row with no
allowed key gets zero weights and a zero context, with finite gradients, whatever the mask's kind.
"""

from __future__ import annotations

import torch
from torch import nn

from .capture import RecordsAttention
from .normalize import Softmax
from .scores import Score


def _as_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask as a float one: 0 where allowed, -inf where not."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Combine any number of masks (``None`` skipped) that broadcast together into one.

    All boolean: their union (``True`` where any is ``True``). Any float: the sum of the float masks, with
    boolean ``True`` entries turned into ``-inf``. Returns ``None`` when every mask is ``None``.
    """
    given = [m for m in masks if m is not None]
    if not given:
        return None
    if all(m.dtype == torch.bool for m in given):
        merged = given[0]
        for m in given[1:]:
            merged = merged | m
        return merged
    dtype = next(m.dtype for m in given if m.dtype != torch.bool)
    merged = None
    for m in given:
        m = _as_additive(m, dtype) if m.dtype == torch.bool else m
        merged = m if merged is None else merged + m
    return merged


def merge_masks(key_padding_mask: torch.Tensor | None, attn_mask: torch.Tensor | None,
                heads: bool = False) -> torch.Tensor | None:
    """Combine a (B, Tk) key padding mask and a (Tq, Tk) / (B, Tq, Tk) attention mask into one mask
    broadcastable to (B, Tq, Tk); with ``heads=True`` the key padding mask is laid out as (B, 1, 1, Tk), to
    broadcast against (B, H, Tq, Tk) with a (Tq, Tk) or (B, H, Tq, Tk) attention mask.

    Each may be boolean (``True`` = not allowed) or float (added to the scores, ``-inf`` = not allowed); the
    result is boolean when both are, float otherwise (see :func:`combine_masks`).
    """
    if key_padding_mask is not None:
        key_padding_mask = key_padding_mask.unsqueeze(-2)  # (B, 1, Tk)
        if heads:
            key_padding_mask = key_padding_mask.unsqueeze(1)  # (B, 1, 1, Tk)
    return combine_masks(key_padding_mask, attn_mask)


def split_mask(mask: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A mask of either kind as ``(not_allowed, bias)``: a boolean mask (``True`` = not allowed) for the
    normalizers, and a finite float bias to add to the scores (``None`` for a boolean mask). The ``-inf``
    entries of a float mask become ``True`` in ``not_allowed`` and 0 in ``bias``."""
    if mask is None or mask.dtype == torch.bool:
        return mask, None
    not_allowed = torch.isneginf(mask)
    return not_allowed, mask.masked_fill(not_allowed, 0.0)


class Attention(RecordsAttention):
    """Generic attention: a score module, a normalizer and optional dropout on the weights.

    Args:
        score: maps ``(query, keys)`` to scores, see :mod:`seq2seq_attn.attention.scores`.
        normalize: maps ``(scores, mask)`` to weights; masked softmax by default
            (:mod:`seq2seq_attn.attention.normalize`).
        dropout: dropout probability applied to the weights before aggregation (training only).
    """

    def __init__(self, score: Score, normalize: nn.Module | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.score = score
        self.normalize = normalize if normalize is not None else Softmax()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """Key-side work of the score, done once per key set (e.g. per source sentence): (..., Tk, Dk) ->
        (..., Tk, *); pass the result as ``projected_keys`` to later calls."""
        return self.score.project_keys(keys)

    def attention_weights(
        self,
        query: torch.Tensor,  # (..., Tq, Dq)
        keys: torch.Tensor,  # (..., Tk, Dk)
        mask: torch.Tensor | None = None,  # bool (True = not allowed) or float additive, to (..., Tq, Tk)
        projected_keys: torch.Tensor | None = None,  # project_keys(keys), if already computed
        bias: torch.Tensor | None = None,  # float, added to the scores (e.g. relative positions); -inf = masked
    ) -> torch.Tensor:
        """Score and normalize: the weights (..., Tq, Tk); a row with no allowed key is all zeros."""
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        scores = self.score.score(query, projected_keys)  # (..., Tq, Tk)
        not_allowed, additive = split_mask(combine_masks(mask, bias))
        if additive is not None:
            scores = scores + additive
        return self.normalize(scores, not_allowed)  # (..., Tq, Tk)

    def aggregate(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Weights (..., Tq, Tk) and values (..., Tk, Dv) to the context (..., Tq, Dv):
        ``dropout(weights) @ values``."""
        return self.dropout(weights) @ values

    def forward(
        self,
        query: torch.Tensor,  # (..., Tq, Dq)
        keys: torch.Tensor,  # (..., Tk, Dk)
        values: torch.Tensor | None = None,  # (..., Tk, Dv); defaults to keys
        mask: torch.Tensor | None = None,  # bool (True = not allowed) or float additive, to (..., Tq, Tk)
        projected_keys: torch.Tensor | None = None,  # project_keys(keys), if already computed
        bias: torch.Tensor | None = None,  # float, added to the scores (e.g. relative positions)
        step: int | None = None,  # decoder step of the query, for subclasses that use it (Luong's local-m)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(context (..., Tq, Dv), weights (..., Tq, Tk))`` and records the weights. The generic
        attention does not depend on ``step``; decoders pass it so that every attention is called alike."""
        weights = self.attention_weights(query, keys, mask, projected_keys, bias)
        self.record(weights)
        context = self.aggregate(weights, keys if values is None else values)  # (..., Tq, Dv)
        return context, weights
