"""The attention core: score -> normalize -> aggregate, used by every model in the project."""

from .capture import RecordsAttention, capture_attention
from .core import Attention, merge_masks
from .multihead import MultiHeadAttention
from .normalize import HardMax, Normalizer, Sigmoid, Softmax, build_normalizer, masked_softmax
from .scores import (
    SCORE_NAMES,
    AdditiveScore,
    ConcatScore,
    DotScore,
    GeneralScore,
    LocationScore,
    ScaledDotScore,
    Score,
    build_score,
)

__all__ = [
    "SCORE_NAMES", "AdditiveScore", "Attention", "ConcatScore", "DotScore", "GeneralScore", "HardMax",
    "LocationScore", "MultiHeadAttention", "Normalizer", "RecordsAttention", "ScaledDotScore", "Score", "Sigmoid",
    "Softmax",
    "build_normalizer", "build_score", "capture_attention", "masked_softmax", "merge_masks",
]
