"""The Transformer encoder-decoder.

Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser and Polosukhin, 2017, "Attention Is All You Need"
(NeurIPS). Pre-LN placement: Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture".

Every attention is the core's :class:`~seq2seq_attn.attention.MultiHeadAttention`, so all weights (encoder
self-attention, decoder self-attention, cross-attention; per layer and head) can be read with
``capture_attention``. The layers and positions are the shared ones of :mod:`seq2seq_attn.layers` (with
``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` parameter names, so their state dicts load
into ours unchanged).

Incremental decoding keeps the search's (batch, beam) layout. The cross-attention keys/values are projected
once per sentence in :meth:`TransformerSeq2Seq.encode` (batch, heads, src_len, head_dim) and the K beams of a
sentence are the query length against them, never copies of the encoder output. Each beam's self-attention
keys/values grow in a cache of shape (batch * beam, heads, steps, head_dim) that ``reorder_state`` gathers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import KV, PositionalEncoding, TransformerDecoderLayer, TransformerEncoderLayer
from ..transformer_config import TransformerConfig
from .base import Seq2SeqModel


@dataclass
class TransformerEncoding:
    """What ``encode`` computes once per sentence."""

    memory: torch.Tensor  # (B, S, D) encoder output
    pad_mask: torch.Tensor  # (B, S) bool, True = pad
    memory_kv: list[KV]  # per decoder layer: cross-attention keys, values (B, H, S, d)


@dataclass
class TransformerState:
    """Decoder state of the (B, K) hypotheses."""

    beam_size: int
    steps: int  # tokens consumed so far (the same for every hypothesis)
    cache: list[KV] | None  # per decoder layer: self-attention keys, values (B * K, H, steps, d)
    tokens: torch.Tensor | None  # without cache: the whole prefix (B * K, steps)


class TransformerSeq2Seq(Seq2SeqModel):
    """Encoder-decoder Transformer with the project's seq2seq interface (forward / encode / step / reorder).

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (equal when ``share_embeddings``).
        config: the ``model.transformer`` section.
        pad_id: padding token; its embedding rows start at zero.
        tie_embeddings: the output layer is the target embedding matrix (transposed).
        share_embeddings: source and target share one embedding matrix (joint vocabulary).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, config: TransformerConfig | None = None,
                 pad_id: int = 0, tie_embeddings: bool = True, share_embeddings: bool = True) -> None:
        super().__init__()
        cfg = config or TransformerConfig()
        self.config = cfg
        self.pad_id = pad_id
        d = cfg.d_model
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"model.share_embeddings needs a joint vocabulary, got source {src_vocab_size} and "
                             f"target {tgt_vocab_size} pieces (set data.joint_vocab: true)")
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d)
        self.src_embed = self.tgt_embed if share_embeddings else nn.Embedding(src_vocab_size, d)
        self.output_projection = nn.Linear(d, tgt_vocab_size, bias=False)
        for emb in {id(m): m for m in (self.src_embed, self.tgt_embed)}.values():
            # Unit-variance inputs after the sqrt(d) scaling; also a sensible scale for the tied output layer.
            nn.init.normal_(emb.weight, std=d ** -0.5)
            if 0 <= pad_id < emb.num_embeddings:
                nn.init.zeros_(emb.weight[pad_id])
        if tie_embeddings:
            self.output_projection.weight = self.tgt_embed.weight
        else:
            nn.init.normal_(self.output_projection.weight, std=d ** -0.5)
        self.embed_scale = math.sqrt(d) if cfg.scale_embeddings else 1.0
        self.positions = PositionalEncoding(d, cfg.max_positions, cfg.positions)
        self.embed_dropout = nn.Dropout(cfg.dropout)
        layer_args = dict(d_model=d, nhead=cfg.heads, dim_feedforward=cfg.ffn_dim, dropout=cfg.dropout,
                          attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
                          activation=cfg.activation, norm_first=cfg.norm_first, layer_norm_eps=cfg.layer_norm_eps)
        self.encoder_layers = nn.ModuleList(TransformerEncoderLayer(**layer_args) for _ in range(cfg.encoder_layers))
        self.decoder_layers = nn.ModuleList(TransformerDecoderLayer(**layer_args) for _ in range(cfg.decoder_layers))
        final_norm = cfg.norm_first if cfg.final_norm is None else cfg.final_norm
        self.encoder_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if final_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if final_norm else nn.Identity()
        self.alignment_layer = cfg.alignment_layer % cfg.decoder_layers
        #: False: ``step`` re-runs the decoder over the whole prefix (no key/value cache); for tests and benchmarks.
        self.use_cache = True

    # -- embeddings ----------------------------------------------------------------------------------------

    def _embed(self, emb: nn.Embedding, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """tokens (N, t) -> (N, t, D): scaled embedding + positions start .. start + t - 1, then dropout."""
        x = emb(tokens) * self.embed_scale + self.positions(start, tokens.size(1))
        return self.embed_dropout(x)

    # -- encoder -------------------------------------------------------------------------------------------

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> TransformerEncoding:
        """src (B, S), src_pad_mask (B, S) -> encoder output and every decoder layer's cross-attention K/V."""
        x = self._embed(self.src_embed, src)  # (B, S, D)
        for layer in self.encoder_layers:
            x = layer(x, src_pad_mask)
        memory = self.encoder_norm(x)  # (B, S, D)
        memory_kv = [layer.project_memory(memory) for layer in self.decoder_layers]
        return TransformerEncoding(memory, src_pad_mask, memory_kv)

    # -- decoder -------------------------------------------------------------------------------------------

    def _decode(self, tokens: torch.Tensor, memory_kv: list[KV], memory_pad_mask: torch.Tensor, start: int = 0,
                cache: list[KV] | None = None, need_weights: bool = False,
                ) -> tuple[torch.Tensor, list[KV], torch.Tensor | None]:
        """tokens (N, t) at positions start.. -> logits (N, t, V), new caches, alignment weights (B, K * t, S)."""
        x = self._embed(self.tgt_embed, tokens, start)  # (N, t, D)
        new_cache: list[KV] = []
        align = None
        for i, layer in enumerate(self.decoder_layers):
            want = need_weights and i == self.alignment_layer
            x, kv, weights = layer(x, memory_kv[i], memory_pad_mask, cache=None if cache is None else cache[i],
                                   need_weights=want)
            new_cache.append(kv)
            if want:
                align = weights
        return self.output_projection(self.decoder_norm(x)), new_cache, align

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), src_pad_mask (B, S), tgt_in (B, T) -> logits (B, T, V)."""
        enc = self.encode(src, src_pad_mask)
        return self._decode(tgt_in, enc.memory_kv, src_pad_mask)[0]

    # -- incremental decoding (the search interface) -----------------------------------------------------------

    def init_state(self, enc: TransformerEncoding, beam_size: int) -> TransformerState:
        return TransformerState(beam_size, 0, None, None)

    def step(self, prev_tokens: torch.Tensor, state: TransformerState, enc: TransformerEncoding,
             ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """prev_tokens (B, K) -> log-probs (B, K, V), new state, cross-attention (B, K, S) of this step."""
        b, k = prev_tokens.shape
        new = prev_tokens.reshape(b * k, 1)  # (B * K, 1)
        if self.use_cache:
            logits, cache, align = self._decode(new, enc.memory_kv, enc.pad_mask, start=state.steps,
                                                cache=state.cache, need_weights=True)
            state = TransformerState(k, state.steps + 1, cache, None)
        else:
            # Reference path: the full decoder over the whole prefix, cross-attention K/V projected again.
            tokens = new if state.tokens is None else torch.cat([state.tokens, new], dim=1)  # (B * K, t)
            memory_kv = [layer.project_memory(enc.memory) for layer in self.decoder_layers]
            logits, _, align = self._decode(tokens, memory_kv, enc.pad_mask, need_weights=True)
            logits = logits[:, -1:]
            align = align.view(b, k, tokens.size(1), -1)[:, :, -1]  # (B, K, S)
            state = TransformerState(k, state.steps + 1, None, tokens)
        log_probs = F.log_softmax(logits.float(), dim=-1).view(b, k, -1)  # (B, K, V)
        return log_probs, state, align.view(b, k, -1)

    def reorder_state(self, state: TransformerState, beam_index: torch.Tensor) -> TransformerState:
        """beam_index (B, K): row b * K + k continues old row b * K + beam_index[b, k]."""
        b, k = beam_index.shape
        old_k = state.beam_size
        rows = (beam_index + torch.arange(b, device=beam_index.device).unsqueeze(1) * old_k).reshape(-1)  # (B * K,)
        cache = None
        if state.cache is not None:
            cache = [(key.index_select(0, rows), value.index_select(0, rows)) for key, value in state.cache]
        tokens = None if state.tokens is None else state.tokens.index_select(0, rows)
        return TransformerState(k, state.steps, cache, tokens)


def build_transformer_model(cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int) -> TransformerSeq2Seq:
    """From the ``model`` config section (``arch: transformer``; its ``transformer`` sub-section may be absent)."""
    return TransformerSeq2Seq(src_vocab_size, tgt_vocab_size, cfg.transformer or TransformerConfig(), pad_id,
                              tie_embeddings=cfg.tie_embeddings, share_embeddings=cfg.share_embeddings)
