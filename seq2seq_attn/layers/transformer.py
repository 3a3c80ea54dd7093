"""Transformer layers: the residual sublayer wiring, the encoder layer and the decoder layer.

Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser and Polosukhin, 2017, "Attention Is All You Need"
(NeurIPS), post-LN as in the paper; pre-LN placement: Xiong et al., 2020, "On Layer Normalization in the
Transformer Architecture". Every attention is the core's :class:`~seq2seq_attn.attention.MultiHeadAttention`,
so its weights can be read with ``capture_attention``. The layers use ``torch.nn.TransformerEncoderLayer`` /
``TransformerDecoderLayer`` parameter names, so torch's state dicts load into ours unchanged.

The translation Transformer (encoder and decoder, with a key/value cache for search) and the Transformer
classifier (encoder only) are built from these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import MultiHeadAttention

KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (N, heads, length, head_dim)
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class Sublayers(nn.Module):
    """What the encoder and decoder layers share: self-attention, the feed-forward block with torch's attribute
    names (``linear1``, ``dropout``, ``linear2``, ``norm{i}``, ``dropout{i}``) and the residual wiring, post-LN
    (paper: ``norm(x + dropout(f(x)))``) or pre-LN (``x + dropout(f(norm(x)))``).

    Args:
        d_model: model width D; nhead: attention heads (D divisible by it).
        dim_feedforward: inner width of the feed-forward block.
        dropout: residual dropout (and the default of the next two).
        attention_dropout: dropout on the attention weights; activation_dropout: after the activation.
        activation: ``relu`` or ``gelu``.
        norm_first: pre-LN instead of post-LN.
        layer_norm_eps: LayerNorm epsilon.
        attention_score: the self-attention's core score (``MultiHeadAttention``'s ``score``; default
            ``scaled_dot``).

    Raises:
        ValueError: for an unknown activation.
    """

    n_sublayers: int

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 attention_dropout: float | None = None, activation_dropout: float | None = None,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 attention_score: str = "scaled_dot") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.norm_first = norm_first
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=self.attention_dropout, score=attention_score)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout if activation_dropout is None else activation_dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.activation = ACTIVATIONS[activation]
        for i in range(1, self.n_sublayers + 1):
            setattr(self, f"norm{i}", nn.LayerNorm(d_model, eps=layer_norm_eps))
            setattr(self, f"dropout{i}", nn.Dropout(dropout))

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def _residual(self, x: torch.Tensor, i: int, fn: Callable[[torch.Tensor], tuple[torch.Tensor, Any]]
                  ) -> tuple[torch.Tensor, Any]:
        """Apply sub-layer ``i`` (its norm and dropout) around ``fn``, which returns (output, extra)."""
        norm, dropout = getattr(self, f"norm{i}"), getattr(self, f"dropout{i}")
        if self.norm_first:
            out, extra = fn(norm(x))
            return x + dropout(out), extra
        out, extra = fn(x)
        return norm(x + dropout(out)), extra


class TransformerEncoderLayer(Sublayers):
    """Self-attention then position-wise feed-forward, each with residual, dropout and LayerNorm."""

    n_sublayers = 2

    def _sa(self, x: torch.Tensor, pad_mask: torch.Tensor | None,
            need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = self.self_attn.project_qkv(x)  # (B, H, S, d) each
        return self.self_attn.attend(q, k, v, key_padding_mask=pad_mask, need_weights=need_weights)

    def forward_with_weights(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None,
                             need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, S, D) -> (B, S, D) and the self-attention weights (B, S, S) averaged over heads (``None``
        unless ``need_weights``)."""
        x, weights = self._residual(x, 1, lambda h: self._sa(h, src_key_padding_mask, need_weights))
        x, _ = self._residual(x, 2, lambda h: (self._ff(h), None))
        return x, weights

    def forward(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, D), src_key_padding_mask (B, S) bool True = pad -> (B, S, D)."""
        return self.forward_with_weights(x, src_key_padding_mask, need_weights=False)[0]


class TransformerDecoderLayer(Sublayers):
    """Masked self-attention, encoder-decoder attention, feed-forward; optional key/value cache.

    ``x`` holds N = batch * beams sequences (sentence-major: row b * K + k is beam k of sentence b). The
    self-attention runs per row; the cross-attention regroups the rows by sentence so that the K beams (times
    their positions) form the query length against the sentence's keys/values (batch, heads, src_len, d).
    """

    n_sublayers = 3

    def __init__(self, d_model: int, nhead: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(d_model, nhead, *args, **kwargs)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=self.attention_dropout)

    def project_memory(self, memory: torch.Tensor) -> KV:
        """Cross-attention keys and values of the encoder output, once per sentence: (B, S, D) -> 2 x (B, H, S, d)."""
        return self.multihead_attn.project_key(memory), self.multihead_attn.project_value(memory)

    def _sa(self, x: torch.Tensor, pad_mask: torch.Tensor | None, cache: KV | None) -> tuple[torch.Tensor, KV]:
        q, k, v = self.self_attn.project_qkv(x)  # (N, H, t, d)
        if cache is not None:
            # Earlier positions of the same rows: attend to them and to the new ones (causally).
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)  # (N, H, past + t, d)
        out, _ = self.self_attn.attend(q, k, v, key_padding_mask=pad_mask, is_causal=q.size(2) > 1)
        return out, (k, v)

    def _ca(self, x: torch.Tensor, memory_kv: KV, memory_pad_mask: torch.Tensor | None,
            need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, t, d = x.shape
        mk, mv = memory_kv  # (B, H, S, d)
        b = mk.size(0)
        q = self.multihead_attn.project_query(x.reshape(b, (n // b) * t, d))  # (B, H, K * t, d)
        out, weights = self.multihead_attn.attend(q, mk, mv, key_padding_mask=memory_pad_mask,
                                                  need_weights=need_weights)  # (B, K * t, D), (B, K * t, S)
        return out.reshape(n, t, d), weights

    def forward(self, x: torch.Tensor, memory_kv: KV, memory_pad_mask: torch.Tensor | None = None,
                tgt_pad_mask: torch.Tensor | None = None, cache: KV | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, KV, torch.Tensor | None]:
        """x (N, t, D) -> (N, t, D), the grown self-attention cache, cross-attention weights (B, K * t, S).

        Self-attention is causal over the cached and the new positions; ``tgt_pad_mask`` (N, past + t) masks
        padded target keys (optional: a causal decoder never attends to trailing padding).
        """
        if x.size(0) % memory_kv[0].size(0) != 0:
            raise ValueError(f"decoder rows ({x.size(0)}) must be a multiple of the batch ({memory_kv[0].size(0)})")
        x, kv = self._residual(x, 1, lambda h: self._sa(h, tgt_pad_mask, cache))
        x, weights = self._residual(x, 2, lambda h: self._ca(h, memory_kv, memory_pad_mask, need_weights))
        x, _ = self._residual(x, 3, lambda h: (self._ff(h), None))
        return x, kv, weights
