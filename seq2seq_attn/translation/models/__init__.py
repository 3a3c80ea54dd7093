"""Translation models, chosen by ``model.arch`` in the config."""

from __future__ import annotations

from .base import Seq2SeqModel, gather_beams


def build_model(cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int) -> Seq2SeqModel:
    """Build the model named by ``cfg.arch`` (a :class:`~seq2seq_attn.translation.config.ModelConfig`)."""
    if cfg.arch == "rnn":
        from .rnn import build_rnn_model

        return build_rnn_model(cfg, src_vocab_size, tgt_vocab_size, pad_id)
    if cfg.arch == "transformer":
        from .transformer import build_transformer_model

        return build_transformer_model(cfg, src_vocab_size, tgt_vocab_size, pad_id)
    raise ValueError(f"model.arch: unknown architecture {cfg.arch!r} (known: rnn, transformer)")


__all__ = ["Seq2SeqModel", "build_model", "gather_beams"]
