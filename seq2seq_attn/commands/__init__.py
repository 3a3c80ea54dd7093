"""Subcommands of ``seq2seq-attn``: one module each, found automatically (see ``seq2seq_attn.cli``)."""
