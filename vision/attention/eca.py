"""Efficient Channel Attention (ECA), with the adaptive kernel size, registered as ``eca``.

Wang, Wu, Zhu, Li, Zuo, Hu, 2020, "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020, arXiv:1910.03151.

A 1-D convolution of size k across the pooled channel descriptor replaces SE's bottleneck (local cross-channel
interaction, no dimensionality reduction); k = |log2(C) / gamma + b / gamma|_odd with gamma = 2, b = 1.
Parameters: k. The module is written once in :mod:`seq2seq_attn.layers.gates` (text classifiers gate their
encoders' feature channels with it too).
"""

from __future__ import annotations

from seq2seq_attn.layers.gates import EfficientChannelAttention, eca_kernel_size

from ..registry import register_attention

register_attention("eca")(EfficientChannelAttention)

__all__ = ["EfficientChannelAttention", "eca_kernel_size"]
