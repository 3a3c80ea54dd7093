"""``seq2seq-attn train CONFIG``: train a translation model (data, subwords, model and Trainer from one YAML)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.cli import add_train_command

    add_train_command(sub, "train", "train a translation model from a YAML config (configs/demo.yaml, ...)",
                      "YAML config with data, model, decoding and training sections",
                      "seq2seq_attn.translation.lifecycle")
