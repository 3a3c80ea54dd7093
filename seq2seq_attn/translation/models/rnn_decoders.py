"""Attention RNN decoders, one step at a time over a (batch, beam) layout.

- :class:`BahdanauDecoder`: Bahdanau et al., 2015, "Neural Machine Translation by Jointly Learning to Align and
  Translate" (RNNsearch). The previous decoder state ``s_{t-1}`` attends (additive score) over the encoder
  annotations; the context ``c_t`` is fed into the RNN step with the previous word; the readout combines
  ``s_t``, ``c_t`` and the previous word embedding.
- :class:`LuongDecoder`: Luong et al., 2015, "Effective Approaches to Attention-based Neural Machine
  Translation". The RNN runs first; its state ``h_t`` attends (dot, general, concat; global or local) and the
  attentional hidden state ``h~_t = tanh(W_c [c_t; h_t])`` predicts the word and, with input feeding, is
  concatenated to the next step's input.

State: a dict of tensors with batch and beam next to each other: ``h``/``c`` (layers, B, K, H), ``feed``
(B, K, D); the step counter ``t`` (an int, shared by all hypotheses) is used by local-m attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...attention import Attention, build_normalizer
from ...attention.scores import build_score
from .base import gather_beams
from .local_attention import LocalAttention
from .rnn_encoder import RNN_CELLS


@dataclass
class EncoderOutput:
    memory: torch.Tensor  # (B, S, De) encoder annotations
    mask: torch.Tensor  # (B, 1, S) bool, True = pad
    projected_keys: torch.Tensor  # (B, S, *) attention.project_keys(memory), once per sentence
    init: torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (layers, B, H) initial decoder state


class RNNDecoderBase(nn.Module):
    """Shared parts: the multi-layer RNN run on (B, K) hypotheses and state bookkeeping."""

    def __init__(self, input_dim: int, hidden: int, layers: int, cell: str, dropout: float) -> None:
        super().__init__()
        self.rnn = RNN_CELLS[cell](input_dim, hidden, num_layers=layers, batch_first=True,
                                   dropout=dropout if layers > 1 else 0.0)
        self.lstm = cell == "lstm"
        self.attention: nn.Module

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """The attention's key-side work on the encoder annotations, once per sentence: (B, S, De) -> (B, S, *)."""
        return self.attention.project_keys(memory)

    def attend(self, query: torch.Tensor, state: dict, enc: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, K, H) over the annotations at step ``state["t"]`` -> context (B, K, De), weights (B, K, S)."""
        return self.attention(query, enc.memory, enc.memory, enc.mask, enc.projected_keys, step=state["t"])

    def init_state(self, enc: EncoderOutput, beam_size: int) -> dict:
        def expand(h: torch.Tensor) -> torch.Tensor:  # (L, B, H) -> (L, B, K, H)
            return h.unsqueeze(2).expand(-1, -1, beam_size, -1).contiguous()

        if self.lstm:
            return {"h": expand(enc.init[0]), "c": expand(enc.init[1]), "t": 0}
        return {"h": expand(enc.init), "t": 0}

    def reorder_state(self, state: dict, beam_index: torch.Tensor) -> dict:
        out = {"t": state["t"]}
        for name, value in state.items():
            if name in ("h", "c"):
                out[name] = gather_beams(value, beam_index, batch_dim=1)
            elif name != "t":
                out[name] = gather_beams(value, beam_index, batch_dim=0)
        return out

    def run_rnn(self, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """One RNN step for every hypothesis: x (B, K, In) -> top output (B, K, H) and the new h (and c)."""
        batch, beams = x.shape[:2]
        h = state["h"].flatten(1, 2)  # (L, B*K, H)
        if self.lstm:
            out, (h, c) = self.rnn(x.reshape(batch * beams, 1, -1), (h, state["c"].flatten(1, 2)))
            new = {"h": h.unflatten(1, (batch, beams)), "c": c.unflatten(1, (batch, beams))}
        else:
            out, h = self.rnn(x.reshape(batch * beams, 1, -1), h)
            new = {"h": h.unflatten(1, (batch, beams))}
        return out.view(batch, beams, -1), new


class BahdanauDecoder(RNNDecoderBase):
    """RNNsearch: attend with ``s_{t-1}``, step the RNN on ``[E y_{t-1}; c_t]``, read out ``[s_t; c_t; E y_{t-1}]``."""

    def __init__(self, emb_dim: int, enc_dim: int, hidden: int, layers: int, cell: str, dropout: float,
                 score: str, attn_hidden: int | None, out_dim: int, max_src_len: int, normalize: str = "softmax",
                 temperature: float = 1.0, normalize_options: dict | None = None) -> None:
        super().__init__(emb_dim + enc_dim, hidden, layers, cell, dropout)
        self.attention = Attention(build_score(score, hidden, enc_dim, attn_hidden, max_src_len),
                                   build_normalizer(normalize, temperature, **(normalize_options or {})))
        self.readout = nn.Linear(hidden + enc_dim + emb_dim, out_dim)

    def forward(self, emb: torch.Tensor, state: dict, enc: EncoderOutput) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """emb (B, K, E) of the previous tokens -> output (B, K, out_dim), new state, attention (B, K, S)."""
        query = state["h"][-1]  # (B, K, H): top layer of s_{t-1}
        context, weights = self.attend(query, state, enc)
        out, new = self.run_rnn(torch.cat([emb, context], -1), state)  # (B, K, H)
        new["t"] = state["t"] + 1
        return torch.tanh(self.readout(torch.cat([out, context, emb], -1))), new, weights


class LuongDecoder(RNNDecoderBase):
    """Luong: step the RNN on ``[E y_{t-1}; h~_{t-1}]`` (input feeding), attend with ``h_t``,
    ``h~_t = tanh(W_c [c_t; h_t])``."""

    def __init__(self, emb_dim: int, enc_dim: int, hidden: int, layers: int, cell: str, dropout: float,
                 score: str, attn_hidden: int | None, out_dim: int, max_src_len: int, attention: str,
                 window: int, input_feeding: bool, normalize: str = "softmax", temperature: float = 1.0,
                 normalize_options: dict | None = None) -> None:
        super().__init__(emb_dim + (out_dim if input_feeding else 0), hidden, layers, cell, dropout)
        score_fn = build_score(score, hidden, enc_dim, attn_hidden, max_src_len)
        normalizer = build_normalizer(normalize, temperature, **(normalize_options or {}))
        if attention == "global":
            self.attention = Attention(score_fn, normalizer)
        else:
            self.attention = LocalAttention(score_fn, attention, window, hidden, normalizer)
        self.combine = nn.Linear(enc_dim + hidden, out_dim, bias=False)
        self.input_feeding, self.out_dim = input_feeding, out_dim

    def init_state(self, enc: EncoderOutput, beam_size: int) -> dict:
        state = super().init_state(enc, beam_size)
        if self.input_feeding:
            state["feed"] = enc.memory.new_zeros(enc.memory.size(0), beam_size, self.out_dim)  # h~_0 = 0
        return state

    def forward(self, emb: torch.Tensor, state: dict, enc: EncoderOutput) -> tuple[torch.Tensor, dict, torch.Tensor]:
        x = torch.cat([emb, state["feed"]], -1) if self.input_feeding else emb
        out, new = self.run_rnn(x, state)  # (B, K, H)
        context, weights = self.attend(out, state, enc)
        attentional = torch.tanh(self.combine(torch.cat([context, out], -1)))  # (B, K, out_dim)
        if self.input_feeding:
            new["feed"] = attentional
        new["t"] = state["t"] + 1
        return attentional, new, weights
