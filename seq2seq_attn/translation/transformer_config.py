"""The ``model.transformer:`` config sub-section (kept apart from the model code so configs load without torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TransformerConfig:
    """Hyper-parameters of the Transformer (Vaswani et al., 2017); defaults are the paper's base model.

    Embedding sharing is set by the model section's ``tie_embeddings`` (target embedding = output layer) and
    ``share_embeddings`` (source embedding too; needs a joint vocabulary), as for the RNN models.
    """

    d_model: int = 512
    heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 6
    ffn_dim: int = 2048
    activation: Literal["relu", "gelu"] = "relu"
    norm_first: bool = False  # False: post-LN (the paper); True: pre-LN
    final_norm: bool | None = None  # LayerNorm after each stack; None = only with pre-LN (where it is needed)
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1  # on embeddings + positions and on every sub-layer output (paper, section 5.4)
    attention_dropout: float | None = None  # on the attention weights; None = same as dropout
    activation_dropout: float | None = None  # inside the feed-forward block; None = same as dropout
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = 1024
    scale_embeddings: bool = True  # multiply embeddings by sqrt(d_model) (section 3.4)
    # which decoder layer's cross-attention (averaged over heads) ``step`` returns for the search; -1 = last
    alignment_layer: int = -1

    def __post_init__(self) -> None:
        if self.d_model % self.heads != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        for name in ("d_model", "heads", "encoder_layers", "decoder_layers", "ffn_dim", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            p = getattr(self, name)
            if p is not None and not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if not -self.decoder_layers <= self.alignment_layer < self.decoder_layers:
            raise ValueError(f"alignment_layer {self.alignment_layer} is out of range for "
                             f"{self.decoder_layers} decoder layers")
