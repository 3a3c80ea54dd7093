"""Recurrent encoder and the bridge to the decoder's initial state.

Bahdanau et al., 2015, "Neural Machine Translation by Jointly Learning to Align and Translate": a bidirectional
RNN whose concatenated forward/backward states annotate each source word, and whose (backward) summary
initializes the decoder through ``s_0 = tanh(W_s h)`` (here: the final states of both directions).
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers import RNN_CELLS, FinalState, PackedRNN

__all__ = ["RNN_CELLS", "Bridge", "RNNEncoder"]


class RNNEncoder(PackedRNN):
    """Embedding -> dropout -> the shared packed (bi)directional multi-layer GRU/LSTM over the unpadded source.

    Parameter names and order (``embedding``, ``rnn``) are those of earlier checkpoints.
    """

    def __init__(self, embedding: nn.Embedding, hidden: int, layers: int, cell: str, bidirectional: bool,
                 dropout: float) -> None:
        super().__init__(embedding.embedding_dim, hidden, layers, cell, bidirectional, dropout, embedding)

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> tuple[torch.Tensor, FinalState]:
        """src (B, S) -> memory (B, S, D) with zeros at pads, final state (layers, B, D) (a pair for LSTM)."""
        return super().forward(src, (~src_pad_mask).sum(-1))


class Bridge(nn.Module):
    """Initial decoder state from the final encoder state: ``tanh(W h_enc + b)`` per layer, or zeros.

    With fewer encoder than decoder layers (or the reverse) the top encoder layer feeds every decoder layer.
    """

    def __init__(self, enc_dim: int, dec_hidden: int, dec_layers: int, lstm: bool, enabled: bool) -> None:
        super().__init__()
        self.dec_hidden, self.dec_layers, self.lstm, self.enabled = dec_hidden, dec_layers, lstm, enabled
        self.proj_h = nn.Linear(enc_dim, dec_hidden) if enabled else None
        self.proj_c = nn.Linear(enc_dim, dec_hidden) if enabled and lstm else None

    def _one(self, h: torch.Tensor, proj: nn.Linear | None) -> torch.Tensor:
        if h.size(0) != self.dec_layers:
            h = h[-1:].expand(self.dec_layers, -1, -1)
        if not self.enabled:
            return h.new_zeros(self.dec_layers, h.size(1), self.dec_hidden)
        return torch.tanh(proj(h))  # (layers, B, H)

    def forward(self, final: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if isinstance(final, tuple):
            return self._one(final[0], self.proj_h), self._one(final[1], self.proj_c)
        return self._one(final, self.proj_h)
