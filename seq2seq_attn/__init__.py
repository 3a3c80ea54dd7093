"""seq2seq_attn: one attention abstraction for translation, text classification and vision."""

__version__ = "0.1.0"
