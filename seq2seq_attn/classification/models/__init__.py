"""Document classifiers; every attention layer in them comes from :mod:`seq2seq_attn.attention`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .attention_classifier import AttentionClassifier
from .base import ClassifierOutput, padding_mask
from .han import HAN
from .pooling import QueryAttentionPooling
from .transformer_classifier import TransformerClassifier


def build_model(cfg: ModelConfig, vocab_size: int, num_classes: int) -> nn.Module:
    """The classifier named by ``cfg.type``."""
    common = dict(vocab_size=vocab_size, num_classes=num_classes, embed_dim=cfg.embed_dim, score=cfg.score,
                  attention_dim=cfg.attention_dim, dropout=cfg.dropout, embed_dropout=cfg.embed_dropout)
    gate = dict(channel_gate=cfg.channel_gate)
    normalizer = dict(normalize=cfg.normalize, temperature=cfg.temperature, normalize_options=cfg.normalize_options)
    if cfg.type == "attention":
        return AttentionClassifier(hidden_size=cfg.hidden_size, encoder=cfg.encoder, num_queries=cfg.num_queries,
                                   **normalizer, **gate, **common)
    if cfg.type == "han":
        return HAN(hidden_size=cfg.hidden_size, **normalizer, **common)
    return TransformerClassifier(num_layers=cfg.num_layers, num_heads=cfg.num_heads, ff_dim=cfg.ff_dim,
                                 pooling=cfg.pooling, self_attention_score=cfg.self_attention_score, **gate,
                                 **common)


__all__ = ["HAN", "AttentionClassifier", "ClassifierOutput", "QueryAttentionPooling", "TransformerClassifier",
           "build_model", "padding_mask"]
