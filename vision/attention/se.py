"""Squeeze-and-Excitation (SE), registered as ``se``.

Hu, Shen, Albanie, Sun, Wu, 2018, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

squeeze: global average pooling z = mean_hw(x); excite: s = sigmoid(W2 relu(W1 z)), W1: C -> C/r, W2: C/r -> C;
scale: x * s. Parameters: 2 C^2 / r weights plus C/r + C biases. The module is written once in
:mod:`seq2seq_attn.layers.gates` (text classifiers gate their encoders' feature channels with it too).
"""

from __future__ import annotations

from seq2seq_attn.layers.gates import SqueezeExcite

from ..registry import register_attention

register_attention("se")(SqueezeExcite)

__all__ = ["SqueezeExcite"]
