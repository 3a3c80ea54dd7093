"""Attention RNN encoder-decoders: Bahdanau et al., 2015 (RNNsearch) and Luong et al., 2015 (global and local
attention with dot / general / concat scores, input feeding), sharing one encoder, bridge and output layer.

References: Bahdanau, Cho, Bengio, 2015, "Neural Machine Translation by Jointly Learning to Align and
Translate"; Luong, Pham, Manning, 2015, "Effective Approaches to Attention-based Neural Machine Translation";
Press and Wolf, 2017, "Using the Output Embedding to Improve Language Models" (weight tying).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Seq2SeqModel
from .rnn_decoders import BahdanauDecoder, EncoderOutput, LuongDecoder
from .rnn_encoder import Bridge, RNNEncoder


class RNNSeq2Seq(Seq2SeqModel):
    def __init__(self, encoder: RNNEncoder, bridge: Bridge, decoder: nn.Module, tgt_embedding: nn.Embedding,
                 out_dim: int, dropout: float, tie_embeddings: bool, pad_id: int) -> None:
        super().__init__()
        self.encoder, self.bridge, self.decoder = encoder, bridge, decoder
        self.tgt_embedding = tgt_embedding
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(out_dim, tgt_embedding.num_embeddings)
        if tie_embeddings:
            if out_dim != tgt_embedding.embedding_dim:
                raise ValueError(f"tie_embeddings: output size {out_dim} != embedding size "
                                 f"{tgt_embedding.embedding_dim}")
            self.output.weight = tgt_embedding.weight
        self.pad_id = pad_id

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> EncoderOutput:
        memory, final = self.encoder(src, src_pad_mask)  # (B, S, De)
        return EncoderOutput(memory, src_pad_mask.unsqueeze(1), self.decoder.project_keys(memory),
                             self.bridge(final))

    def init_state(self, enc: EncoderOutput, beam_size: int) -> dict:
        return self.decoder.init_state(enc, beam_size)

    def reorder_state(self, state: dict, beam_index: torch.Tensor) -> dict:
        return self.decoder.reorder_state(state, beam_index)

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(out))

    def step(self, prev_tokens: torch.Tensor, state: dict, enc: EncoderOutput
             ) -> tuple[torch.Tensor, dict, torch.Tensor]:
        emb = self.dropout(self.tgt_embedding(prev_tokens))  # (B, K, E)
        out, state, weights = self.decoder(emb, state, enc)
        return torch.log_softmax(self._logits(out).float(), dim=-1), state, weights

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        enc = self.encode(src, src_pad_mask)
        state = self.init_state(enc, 1)
        emb = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E)
        outs = []
        # unbind, not emb[:, t]: one backward op instead of a zero-filled (B, T, E) gradient per step
        for emb_t in emb.unbind(1):
            out, state, _ = self.decoder(emb_t.unsqueeze(1), state, enc)  # (B, 1, D)
            outs.append(out)
        return self._logits(torch.cat(outs, 1))  # (B, T, V)


def build_rnn_model(cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int) -> RNNSeq2Seq:
    """Build from a :class:`~seq2seq_attn.translation.config.ModelConfig` with ``arch: rnn``."""
    r = cfg.rnn
    src_emb = nn.Embedding(src_vocab_size, r.emb_dim, padding_idx=pad_id)
    if cfg.share_embeddings:
        if src_vocab_size != tgt_vocab_size:
            raise ValueError("model.share_embeddings needs one joint vocabulary")
        tgt_emb = src_emb
    else:
        tgt_emb = nn.Embedding(tgt_vocab_size, r.emb_dim, padding_idx=pad_id)
    encoder = RNNEncoder(src_emb, r.enc_hidden, r.enc_layers, r.cell, r.bidirectional, r.dropout)
    enc_dim = encoder.output_size
    bridge = Bridge(enc_dim, r.dec_hidden, r.dec_layers, r.cell == "lstm", r.bridge)
    out_dim = r.emb_dim if cfg.tie_embeddings else r.dec_hidden
    common = dict(emb_dim=r.emb_dim, enc_dim=enc_dim, hidden=r.dec_hidden, layers=r.dec_layers, cell=r.cell,
                  dropout=r.dropout, score=r.score, attn_hidden=r.attn_hidden, out_dim=out_dim,
                  max_src_len=r.max_src_len, normalize=r.normalize, temperature=r.temperature,
                  normalize_options=r.normalize_options)
    try:
        if r.decoder == "bahdanau":
            decoder = BahdanauDecoder(**common)
        else:
            decoder = LuongDecoder(**common, attention=r.attention, window=r.window, input_feeding=r.input_feeding)
    except ValueError as e:
        raise ValueError(f"model.rnn.score: {e}") from e
    return RNNSeq2Seq(encoder, bridge, decoder, tgt_emb, out_dim, r.dropout, cfg.tie_embeddings, pad_id)
