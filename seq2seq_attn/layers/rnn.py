"""One recurrent encoder over padded batches: a (bi)directional, multi-layer GRU or LSTM run on packed
sequences, so that its outputs and final states do not depend on the padding.

Bahdanau et al., 2015, "Neural Machine Translation by Jointly Learning to Align and Translate" (the
bidirectional annotations of the translation encoder); Yang et al., 2016, "Hierarchical Attention Networks
for Document Classification" (word and sentence BiGRUs); Sun & Lu, 2020 (the attention classifier's BiLSTM).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNN_CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}

FinalState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (layers, N, D); (h, c) for an LSTM


class PackedRNN(nn.Module):
    """A GRU/LSTM over ``(N, T, E)`` inputs with per-row lengths; the cell is ``self.rnn`` (torch's names).

    Args:
        input_size: E; hidden_size: H per direction; num_layers: stacked layers.
        cell: ``gru`` or ``lstm``.
        bidirectional: two directions, concatenated: D = 2H (else D = H).
        dropout: between stacked layers (ignored for one layer, as torch warns otherwise), and on the embedded
            inputs when ``embedding`` is given.
        embedding: optional; then the inputs are token ids (N, T), embedded and dropped out first. Registered
            before ``rnn``, so parameters keep the order (embedding, rnn) of earlier translation checkpoints
            and optimizer states.

    Rows of length 0 are allowed (HAN's empty sentence slots): their outputs and final states are zeros.

    Raises:
        ValueError: for an unknown cell.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = True, dropout: float = 0.0, embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.embedding = embedding
        self.input_dropout = nn.Dropout(dropout) if embedding is not None else None
        rnn_cls = RNN_CELLS.get(cell)
        if rnn_cls is None:
            raise ValueError(f"unknown RNN cell {cell!r}: expected lstm or gru")
        self.rnn = rnn_cls(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.num_layers = num_layers
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, FinalState]:
        """x (N, T, E) (token ids (N, T) with an embedding), lengths (N,) -> outputs (N, T, D), zeros at
        padding, and the final state (layers, N, D) (directions concatenated per layer; an ``(h, c)`` pair for
        an LSTM), both in the dtype of the (embedded) inputs whatever autocast ran the cell in."""
        if self.embedding is not None:
            x = self.input_dropout(self.embedding(x))  # (N, T, E)
        n, t, _ = x.shape
        lengths = lengths.cpu()
        keep = (lengths > 0).nonzero(as_tuple=True)[0]  # packing rejects empty rows: run only the others
        if keep.numel() == n:  # the usual case: every row has a token
            outputs, finals = self._run(x, lengths, t)
        elif keep.numel() == 0:
            outputs = x.new_zeros(n, t, self.output_size)
            finals = [x.new_zeros(self.num_layers, n, self.output_size)] * (2 if self.is_lstm else 1)
        else:
            rows = keep.to(x.device)
            states, finals = self._run(x[rows], lengths[keep], t)  # (N', T, D), (layers, N', D)
            outputs = x.new_zeros(n, t, self.output_size).index_copy(0, rows, states)
            finals = [h.new_zeros(h.size(0), n, h.size(2)).index_copy(1, rows, h) for h in finals]
        return outputs, (finals[0], finals[1]) if self.is_lstm else finals[0]

    @property
    def is_lstm(self) -> bool:
        return isinstance(self.rnn, nn.LSTM)

    def _run(self, x: torch.Tensor, lengths: torch.Tensor, total: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Rows with at least one token: x (N', T, E), lengths (N',) on the CPU -> (N', T, D), merged finals."""
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        states, final = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=total)  # (N', T, D)
        finals = list(final) if isinstance(final, tuple) else [final]
        return states.to(x.dtype), [self._merge(h).to(x.dtype) for h in finals]

    def _merge(self, h: torch.Tensor) -> torch.Tensor:
        # (layers * directions, N, H) -> (layers, N, directions * H): the two directions side by side per layer.
        h = h.view(self.num_layers, self.directions, h.size(1), -1)
        return torch.cat([h[:, d] for d in range(self.directions)], dim=-1)
