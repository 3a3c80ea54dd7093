"""Vision attention modules on the seq2seq_attn core, insertable into ResNets."""

from .registry import create_attention, list_attention, register_attention

__all__ = ["create_attention", "list_attention", "register_attention"]
