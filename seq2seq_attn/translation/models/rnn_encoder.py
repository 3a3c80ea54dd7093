"""Recurrent encoder and the bridge to the decoder's initial state.

Bahdanau et al., 2015, "Neural Machine Translation by Jointly Learning to Align and Translate": a bidirectional
RNN whose concatenated forward/backward states annotate each source word, and whose (backward) summary
initializes the decoder through ``s_0 = tanh(W_s h)`` (here: the final states of both directions).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNN_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNEncoder(nn.Module):
    """Embedding -> dropout -> (bi)directional multi-layer GRU/LSTM over the unpadded source."""

    def __init__(self, embedding: nn.Embedding, hidden: int, layers: int, cell: str, bidirectional: bool,
                 dropout: float) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNN_CELLS[cell](embedding.embedding_dim, hidden, num_layers=layers, batch_first=True,
                                   bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.output_dim = hidden * self.directions

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """src (B, S) -> memory (B, S, D) with zeros at pads, final state (layers, B, D) (a pair for LSTM)."""
        lengths = (~src_pad_mask).sum(-1).cpu()  # (B,)
        x = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, D)
        if isinstance(final, tuple):
            return memory, (self._merge(final[0]), self._merge(final[1]))
        return memory, self._merge(final)

    def _merge(self, h: torch.Tensor) -> torch.Tensor:
        # (layers * directions, B, H) -> (layers, B, directions * H): concatenate the two directions per layer.
        batch = h.size(1)
        h = h.view(self.layers, self.directions, batch, -1)
        return torch.cat([h[:, d] for d in range(self.directions)], dim=-1)


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
