"""The attention core: score -> normalize -> aggregate, used by every model in the project."""

from .capture import RecordsAttention, capture_attention
from .core import Attention, combine_masks, merge_masks, split_mask
from .multihead import MultiHeadAttention
from .normalize import (
    NORMALIZERS,
    CountNormalize,
    HardMax,
    HardSigmoid,
    Normalizer,
    Sigmoid,
    Softmax,
    Tanh,
    build_normalizer,
    check_normalizer_name,
    masked_softmax,
    register_normalizer,
)
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
from .stochastic import (
    AttentionSamples,
    CategoricalSample,
    GumbelSoftmax,
    ReinforceTerm,
    SamplingNormalizer,
    sampled_attention,
    sampling_normalizers,
)

__all__ = [
    "NORMALIZERS", "SCORE_NAMES", "AdditiveScore", "Attention", "AttentionSamples", "CategoricalSample",
    "ConcatScore", "CountNormalize", "DotScore", "GeneralScore", "GumbelSoftmax", "HardMax", "HardSigmoid",
    "LocationScore", "MultiHeadAttention", "Normalizer", "RecordsAttention", "ReinforceTerm", "SamplingNormalizer",
    "ScaledDotScore", "Score", "Sigmoid", "Softmax", "Tanh", "build_normalizer", "build_score", "capture_attention",
    "check_normalizer_name", "combine_masks", "masked_softmax", "merge_masks", "register_normalizer",
    "sampled_attention", "sampling_normalizers", "split_mask",
]
