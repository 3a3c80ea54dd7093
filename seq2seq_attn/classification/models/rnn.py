"""Bidirectional RNN over padded sequences whose outputs do not depend on the padding (packed sequences)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiRNN(nn.Module):
    """A one-layer bidirectional LSTM or GRU: ``(N, T, E)`` and lengths -> ``(N, T, 2H)`` (zeros at padding).

    Rows of length 0 are allowed (HAN's empty sentence slots): they give all-zero outputs.
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "lstm") -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if rnn_cls is None:
            raise ValueError(f"unknown RNN cell {cell!r}: expected lstm or gru")
        self.rnn = rnn_cls(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        out = x.new_zeros(n, t, self.output_size)
        keep = (lengths > 0).nonzero(as_tuple=True)[0]  # packing rejects empty rows: run only the others
        if keep.numel() == 0:
            return out
        packed = pack_padded_sequence(x[keep], lengths[keep].cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=t)  # (N', T, 2H)
        return out.index_copy(0, keep, states.to(out.dtype))
