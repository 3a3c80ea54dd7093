"""Normalizers: turn scores into attention weights, one table of them by name.

Masks follow ``torch.nn.MultiheadAttention``: a boolean ``mask`` broadcastable to the scores where ``True``
means "not allowed to attend" (the core ``Attention`` turns float additive masks into this form first, see
:func:`seq2seq_attn.attention.core.split_mask`). Masked keys get exactly zero weight, and a row whose keys are
all masked gets all zeros (never NaN, in the forward or the backward pass).

Every normalizer is registered by name in :data:`NORMALIZERS` with :func:`register_normalizer`, and built by
:func:`build_normalizer` (model configs name them as ``normalize: <name>``): new normalizers (stochastic ones,
for example) are added by registering a class, without touching the models.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _masked_scores(scores: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill masked scores with -inf; return also which rows are entirely masked."""
    if mask is None:
        return scores, None
    scores = scores.masked_fill(mask, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
    # An all--inf row would give NaN in softmax (and its gradient); score it uniformly, then zero it below.
    scores = scores.masked_fill(empty, 0.0)
    return scores, empty


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, temperature: float = 1.0,
                   dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` that ignores masked positions; fully masked rows give zeros."""
    if temperature != 1.0:
        scores = scores / temperature
    scores, empty = _masked_scores(scores, mask)
    weights = torch.softmax(scores, dim=dim)
    if empty is not None:
        weights = weights.masked_fill(empty, 0.0)
    return weights


class Normalizer(nn.Module):
    """Base class: maps ``scores (..., Tq, Tk)`` and a boolean ``mask`` (True = not allowed, broadcastable to
    the scores) to weights of the same shape, with a temperature ``T > 0`` dividing the scores.

    Raises:
        ValueError: ``temperature <= 0``.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


#: name -> normalizer class; extended with :func:`register_normalizer`.
NORMALIZERS: dict[str, type[Normalizer]] = {}


def register_normalizer(name: str) -> Callable[[type[Normalizer]], type[Normalizer]]:
    """Class decorator adding a :class:`Normalizer` to :data:`NORMALIZERS` under ``name``.

    Raises:
        ValueError: ``name`` is taken already.
    """

    def add(cls: type[Normalizer]) -> type[Normalizer]:
        if name in NORMALIZERS:
            raise ValueError(f"normalizer {name!r} is registered already ({NORMALIZERS[name].__name__})")
        NORMALIZERS[name] = cls
        return cls

    return add


def check_normalizer_name(name: str, key: str = "normalize") -> str:
    """Return ``name`` if it names a registered normalizer; else a ``ValueError`` naming ``key`` and the
    accepted names (for config checks)."""
    if name not in NORMALIZERS:
        raise ValueError(f"{key}: unknown normalizer {name!r} (accepted: {', '.join(NORMALIZERS)})")
    return name


def build_normalizer(name: str, temperature: float = 1.0, **options: object) -> Normalizer:
    """Build a registered normalizer by name (softmax, sigmoid, hard, hard_sigmoid, tanh, count, ...);
    ``options`` go to its constructor after the temperature.

    Raises:
        ValueError: unknown name (the message lists the accepted ones) or ``temperature <= 0``.
    """
    return NORMALIZERS[check_normalizer_name(name)](temperature, **options)


def check_normalizer_options(name: str, temperature: float, options: dict, key: str = "normalize_options") -> None:
    """Build the normalizer once to check its options (for config checks): a bad or unknown option is a
    ``ValueError`` naming ``key``."""
    try:
        build_normalizer(name, temperature, **options)
    except TypeError as e:
        raise ValueError(f"{key}: {name} does not take these options ({e})") from e
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from e


def _zero_masked(weights: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return weights if mask is None else weights.masked_fill(mask, 0.0)


@register_normalizer("softmax")
class Softmax(Normalizer):
    """Masked softmax with optional temperature (``weights = softmax(scores / T)``)."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_softmax(scores, mask, self.temperature)


@register_normalizer("sigmoid")
class Sigmoid(Normalizer):
    """Independent gates ``sigmoid(scores / T)`` (weights need not sum to one); masked positions give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return _zero_masked(torch.sigmoid(scores / self.temperature), mask)


@register_normalizer("hard")
class HardMax(Normalizer):
    """Hard attention: one-hot on the best unmasked key, with straight-through softmax gradients.

    The forward pass puts all weight on the arg-max key; the backward pass uses the gradient of the masked
    softmax (Bengio et al., 2013, straight-through estimator).
    """

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        soft = masked_softmax(scores, mask, self.temperature)
        index = soft.argmax(dim=-1, keepdim=True)
        hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
        if mask is not None:
            hard = hard * (soft.sum(dim=-1, keepdim=True) > 0)  # fully masked rows stay zero
        return hard + (soft - soft.detach())  # exactly one-hot forward, softmax gradient backward


@register_normalizer("hard_sigmoid")
class HardSigmoid(Normalizer):
    """Piecewise-linear gates ``hardsigmoid(scores / T) = clamp(scores / (6 T) + 1/2, 0, 1)`` (Howard et al.,
    2019, MobileNetV3); masked positions give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return _zero_masked(F.hardsigmoid(scores / self.temperature), mask)


@register_normalizer("tanh")
class Tanh(Normalizer):
    """Signed gates ``tanh(scores / T)`` in (-1, 1) (the ``1 + tanh`` gates of some vision modules are
    written by the modules); masked positions give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return _zero_masked(torch.tanh(scores / self.temperature), mask)


@register_normalizer("count")
class CountNormalize(Normalizer):
    """``weights = scores / (T N)`` with N the number of allowed keys of the row: Non-local's normalization
    ``C(x) = N`` for the dot-product and concatenation pairwise functions (Wang et al., 2018, "Non-local Neural
    Networks"). Rows need not sum to one; masked keys and rows with no allowed key give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.temperature != 1.0:
            scores = scores / self.temperature
        if mask is None:
            return scores / scores.size(-1)
        count = (~mask).sum(dim=-1, keepdim=True).clamp(min=1)
        return scores.masked_fill(mask, 0.0) / count


@register_normalizer("uniform")
class UniformNormalize(Normalizer):
    """Equal weights ``1 / N`` over the N allowed keys of each row, whatever the scores: mean pooling, the
    no-attention baseline of the text models (a decoder reading the mean encoder state, a classifier pooling
    the mean of its states; ``seq2seq-attn study``'s ``none`` mechanism). The scores get no gradient; masked
    keys and rows with no allowed key give 0."""

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        ones = torch.ones_like(scores) if mask is None else (~mask).to(scores.dtype).expand_as(scores)
        # + 0 * scores: the weights stay in the graph (zero, finite gradients), as every normalizer's do
        no_grad = 0.0 * scores.masked_fill(~torch.isfinite(scores), 0.0)
        return ones / ones.sum(dim=-1, keepdim=True).clamp(min=1.0) + no_grad
