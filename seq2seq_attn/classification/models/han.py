"""Hierarchical Attention Network: Yang et al. (2016), "Hierarchical Attention Networks for Document
Classification" (NAACL). A word BiGRU and word attention turn each sentence into a vector; a sentence BiGRU
and sentence attention turn the sentences into a document vector; a linear head classifies it."""

from __future__ import annotations

import torch
from torch import nn

from ...layers import PackedRNN
from .base import ClassifierOutput, padding_mask
from .pooling import QueryAttentionPooling


class HAN(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128, hidden_size: int = 64,
                 score: str = "additive", attention_dim: int | None = None, dropout: float = 0.3,
                 embed_dropout: float = 0.1, normalize: str = "softmax", temperature: float = 1.0,
                 normalize_options: dict | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.word_encoder = PackedRNN(embed_dim, hidden_size, cell="gru")
        self.word_pool = QueryAttentionPooling(2 * hidden_size, score, attention_dim, normalize=normalize,
                                               temperature=temperature, normalize_options=normalize_options)
        self.sentence_encoder = PackedRNN(2 * hidden_size, hidden_size, cell="gru")
        self.sentence_pool = QueryAttentionPooling(2 * hidden_size, score, attention_dim, normalize=normalize,
                                               temperature=temperature, normalize_options=normalize_options)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, sentence_lengths: torch.Tensor) -> ClassifierOutput:
        # tokens (B, S, W), sentence_lengths (B, S); a length of 0 is an empty (or padding) sentence
        b, s, w = tokens.shape
        flat_lengths = sentence_lengths.reshape(b * s)
        words = self.embed_dropout(self.embed(tokens.reshape(b * s, w)))  # (B*S, W, E)
        words = self.word_encoder(words, flat_lengths)[0]  # (B*S, W, 2H)
        sentences, word_weights = self.word_pool(words, padding_mask(flat_lengths, w))  # (B*S, 2H), (B*S, W)
        sentences = sentences.view(b, s, -1)  # (B, S, 2H)

        # The sentence GRU must not see empty sentences (they carry no words): move the non-empty ones to the
        # front, in order, run the GRU on them, and put the states back where they came from.
        empty = sentence_lengths == 0  # (B, S)
        order = torch.argsort(empty.to(torch.int8), dim=1, stable=True)  # (B, S)
        index = order.unsqueeze(-1).expand_as(sentences)
        packed = self.sentence_encoder(sentences.gather(1, index), (~empty).sum(1))[0]  # (B, S, 2H)
        states = torch.zeros_like(packed).scatter(1, index, packed)
        doc, sentence_weights = self.sentence_pool(states, empty)  # (B, 2H), (B, S)
        logits = self.head(self.dropout(doc))
        return ClassifierOutput(logits, word_weights.view(b, s, w), sentence_weights)
