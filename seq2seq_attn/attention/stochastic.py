"""Stochastic hard attention: normalizers that sample one key per query, and the REINFORCE term of the tasks.

Two normalizers join the table of :mod:`seq2seq_attn.attention.normalize` (chosen by name in a model config,
``normalize: categorical`` or ``normalize: gumbel``, their options under ``normalize_options``):

- ``categorical`` (Xu et al., 2015, "Show, Attend and Tell", section 4.1, "hard" attention): in training each
  query attends to one key ``s ~ Categorical(softmax(scores / T))``; with probability ``expectation_prob`` (the
  paper's 0.5) a row uses the expectation (the soft weights) instead. The sample has no gradient path; its
  parameters learn by REINFORCE, ``-(R - b) * log p(s)``, with a moving-average baseline ``b`` and an entropy
  bonus, from what the normalizer recorded in the forward pass and the reward the task computes.
- ``gumbel`` (Jang et al., 2017; Maddison et al., 2017): ``y = softmax((log p + g) / tau)`` with Gumbel noise
  ``g``; the forward pass is the one-hot arg-max of ``y``, the backward pass ``y``'s gradient (straight-through).
  ``tau = max(tau_min, tau * exp(-anneal_rate * n))`` after ``n`` training batches (Jang et al.'s schedule).

In evaluation mode both are deterministic: the one-hot arg-max of the soft weights (``eval_mode: argmax``) or the
soft weights themselves (``eval_mode: expectation``). Masked keys are never chosen; a row with no allowed key
is all zeros. Randomness comes from torch's global generator (its state is in every trainer checkpoint).

The task side: :func:`sampled_attention` arms the sampling normalizers of a model around one training forward
pass; :meth:`AttentionSamples.loss` turns what they recorded and a per-example reward into the loss term.

    with sampled_attention(model) as samples:
        out = model(batch)                              # normalizers record log p(s) and entropies
    loss = task_loss + samples.loss(reward).loss_sum    # reward (B,): e.g. -NLL per sentence, correctness
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .normalize import Normalizer, masked_softmax, register_normalizer

EvalMode = Literal["argmax", "expectation"]


def _one_hot_argmax(weights: torch.Tensor) -> torch.Tensor:
    """One-hot of each row's arg-max (..., Tk); rows that are all zero (no allowed key) stay zero."""
    index = weights.argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(weights).scatter_(-1, index, 1.0)
    return hard * (weights.sum(dim=-1, keepdim=True) > 0)


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of ``probs`` (..., Tk) -> (...); zero-probability keys contribute 0."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1)


class SamplingNormalizer(Normalizer):
    """Base of the normalizers that sample in training (see the module doc).

    Args:
        temperature: divides the scores before the softmax (> 0).
        eval_mode: ``argmax`` (one-hot on the most probable key) or ``expectation`` (the soft weights).
        entropy_weight: weight of the entropy bonus (``-entropy_weight * H``) added by the task.

    Buffers (saved with the weights, so a resumed run continues them): ``num_batches`` (training batches seen,
    counted by :func:`sampled_attention`).

    Raises:
        ValueError: bad ``eval_mode`` or a negative weight.
    """

    def __init__(self, temperature: float = 1.0, eval_mode: EvalMode = "argmax", entropy_weight: float = 0.0
                 ) -> None:
        super().__init__(temperature)
        if eval_mode not in ("argmax", "expectation"):
            raise ValueError(f"eval_mode must be argmax or expectation, got {eval_mode!r}")
        if entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}")
        self.eval_mode, self.entropy_weight = eval_mode, float(entropy_weight)
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.long))
        self._records: list[tuple[torch.Tensor | None, torch.Tensor]] | None = None  # armed: (log p, entropy)

    def forward(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        soft = masked_softmax(scores.float(), mask, self.temperature)  # (..., Tq, Tk)
        if not self.training:
            weights = soft if self.eval_mode == "expectation" else _one_hot_argmax(soft)
            return weights.to(scores.dtype)
        weights, log_prob = self.sample(soft)
        if self._records is not None:
            self._records.append((log_prob, _entropy(soft)))
        return weights.to(scores.dtype)

    def sample(self, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training-mode weights from the soft weights ``soft`` (..., Tq, Tk) and the log-probability of the
        sample per row (..., Tq), 0 where no REINFORCE term applies (``None``: no REINFORCE at all)."""
        raise NotImplementedError


@register_normalizer("categorical")
class CategoricalSample(SamplingNormalizer):
    """Xu et al. (2015) stochastic hard attention: a one-hot sample from the attention distribution, trained
    by REINFORCE (see the module doc).

    Args (after those of :class:`SamplingNormalizer`):
        expectation_prob: probability that a row uses the soft weights instead of a sample (the paper's 0.5).
        baseline_decay: the moving-average baseline ``b <- decay * b + (1 - decay) * mean(R)`` (paper: 0.9).
        reward_weight: weight ``lambda_r`` of the REINFORCE term.

    Buffers: ``baseline`` and ``num_updates`` (the first update sets ``b`` to the batch's mean reward).
    """

    def __init__(self, temperature: float = 1.0, eval_mode: EvalMode = "argmax", entropy_weight: float = 0.0,
                 expectation_prob: float = 0.5, baseline_decay: float = 0.9, reward_weight: float = 1.0) -> None:
        super().__init__(temperature, eval_mode, entropy_weight)
        if not 0.0 <= expectation_prob <= 1.0:
            raise ValueError(f"expectation_prob must be in [0, 1], got {expectation_prob}")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        if reward_weight < 0:
            raise ValueError(f"reward_weight must be >= 0, got {reward_weight}")
        self.expectation_prob, self.baseline_decay = float(expectation_prob), float(baseline_decay)
        self.reward_weight = float(reward_weight)
        self.register_buffer("baseline", torch.zeros((), dtype=torch.float32))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def sample(self, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        allowed = soft.sum(-1, keepdim=True) > 0  # (..., Tq, 1): rows with at least one allowed key
        probs = torch.where(allowed, soft, torch.ones_like(soft))  # no-key rows: any draw, zeroed below
        flat = probs.detach().reshape(-1, probs.size(-1))  # (N, Tk)
        index = torch.multinomial(flat, 1).view(*soft.shape[:-1], 1)  # (..., Tq, 1); masked keys have p = 0
        hard = torch.zeros_like(soft).scatter_(-1, index, 1.0) * allowed
        log_prob = soft.gather(-1, index).clamp_min(1e-30).log().squeeze(-1)  # (..., Tq), grad into scores
        log_prob = log_prob * allowed.squeeze(-1)
        if self.expectation_prob > 0:
            use_mean = torch.rand(soft.shape[:-1], device=soft.device) < self.expectation_prob  # (..., Tq)
            hard = torch.where(use_mean.unsqueeze(-1), soft, hard)
            log_prob = log_prob.masked_fill(use_mean, 0.0)  # the expectation is trained by backprop
        return hard, log_prob

    @torch.no_grad()
    def update_baseline(self, reward: torch.Tensor) -> None:
        """``b <- decay * b + (1 - decay) * mean(reward)`` (the first call sets ``b = mean(reward)``)."""
        mean = reward.detach().float().mean()
        if int(self.num_updates) == 0:
            self.baseline.copy_(mean)
        else:
            self.baseline.mul_(self.baseline_decay).add_((1 - self.baseline_decay) * mean)
        self.num_updates += 1


@register_normalizer("gumbel")
class GumbelSoftmax(SamplingNormalizer):
    """Gumbel-softmax with the straight-through estimator (Jang et al., 2017): one-hot forward, the gradient
    of ``softmax((log p + g) / tau)`` backward (``straight_through: false`` returns the relaxed weights).

    Args (after those of :class:`SamplingNormalizer`):
        tau: initial Gumbel temperature; ``tau_min`` its floor; ``anneal_rate`` r of
            ``tau_n = max(tau_min, tau * exp(-r n))`` after n training batches.
    """

    def __init__(self, temperature: float = 1.0, eval_mode: EvalMode = "argmax", entropy_weight: float = 0.0,
                 tau: float = 1.0, tau_min: float = 0.5, anneal_rate: float = 1e-4, straight_through: bool = True
                 ) -> None:
        super().__init__(temperature, eval_mode, entropy_weight)
        if not (tau > 0 and tau_min > 0 and anneal_rate >= 0):
            raise ValueError(f"need tau > 0, tau_min > 0, anneal_rate >= 0; got {tau}, {tau_min}, {anneal_rate}")
        self.tau, self.tau_min, self.anneal_rate = float(tau), float(tau_min), float(anneal_rate)
        self.straight_through = bool(straight_through)

    def current_tau(self) -> float:
        """The Gumbel temperature of the current training batch."""
        return max(self.tau_min, self.tau * math.exp(-self.anneal_rate * int(self.num_batches)))

    def sample(self, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        allowed = soft.sum(-1, keepdim=True) > 0  # (..., Tq, 1)
        log_p = soft.clamp_min(1e-30).log().masked_fill(soft == 0, float("-inf"))  # masked keys stay -inf
        u = torch.rand_like(soft).clamp(1e-20, 1.0 - 1e-7)
        noisy = torch.where(allowed, log_p - torch.log(-torch.log(u)), torch.zeros_like(soft))
        relaxed = masked_softmax(noisy / self.current_tau(), ~allowed.expand_as(soft) | (soft == 0))
        if not self.straight_through:
            return relaxed, None
        hard = _one_hot_argmax(relaxed)
        return hard + (relaxed - relaxed.detach()), None


# -- the task side: arm the sampling normalizers, turn their records into the loss term -------------------------


@dataclass
class ReinforceTerm:
    """The attention's loss term for one batch: ``loss_sum`` (summed over the examples, to add to the task's
    summed loss), and for the logs the batch means of the reward and of the attention entropy (nats per
    query), and the baseline used (``nan`` when no normalizer uses REINFORCE)."""

    loss_sum: torch.Tensor
    reward: float
    entropy: float
    baseline: float

    def logs(self) -> dict[str, float]:
        figures = {"attn_reward": self.reward, "attn_entropy": self.entropy, "attn_baseline": self.baseline}
        return {k: v for k, v in figures.items() if not math.isnan(v)}


@dataclass
class AttentionSamples:
    """What the armed normalizers recorded during one forward pass (see :func:`sampled_attention`)."""

    records: dict[SamplingNormalizer, list[tuple[torch.Tensor | None, torch.Tensor]]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """True when some sampling normalizer recorded a training-mode call."""
        return any(self.records.values())

    @property
    def needs_reward(self) -> bool:
        """True when some record carries a REINFORCE log-probability (the task must compute the reward)."""
        return any(lp is not None for recs in self.records.values() for lp, _ in recs)

    def loss(self, reward: torch.Tensor | None) -> ReinforceTerm:
        """The REINFORCE and entropy terms from the records and ``reward`` (B,) (higher is better; ``None``
        when :attr:`needs_reward` is false), then update each categorical normalizer's baseline.

        Per normalizer, summed over the examples b: ``-reward_weight * (R_b - baseline) * sum log p(s)`` over the
        example's sampled rows, minus ``entropy_weight * sum H`` over its rows. Each record's leading dimension
        is the batch or the batch times other dimensions in batch-major order (HAN's B*S sentences).

        Raises:
            ValueError: a record does not split into ``len(reward)`` examples, or no reward where one is needed.
        """
        if self.needs_reward and reward is None:
            raise ValueError("a categorical attention normalizer recorded samples: the task must give a reward")
        total = torch.zeros(())
        entropies, baselines = [], []
        for norm, recs in self.records.items():
            for log_prob, entropy in recs:
                total = total.to(entropy.device)
                entropies.append(entropy.detach().float().mean())
                if norm.entropy_weight > 0:
                    total = total - norm.entropy_weight * entropy.sum()
                if log_prob is None or not isinstance(norm, CategoricalSample):
                    continue
                r = reward.detach().float().to(log_prob.device)
                if log_prob.numel() % r.numel() != 0:
                    raise ValueError(f"attention samples of shape {tuple(log_prob.shape)} do not split into "
                                     f"{r.numel()} examples")
                per_example = log_prob.reshape(r.numel(), -1).sum(-1)  # (B,)
                total = total - norm.reward_weight * ((r - norm.baseline) * per_example).sum()
            if isinstance(norm, CategoricalSample) and recs and reward is not None:
                baselines.append(float(norm.baseline))
                norm.update_baseline(reward)
        entropy = float(torch.stack(entropies).mean()) if entropies else float("nan")
        mean_reward = float(reward.float().mean()) if reward is not None else float("nan")
        baseline = sum(baselines) / len(baselines) if baselines else float("nan")
        return ReinforceTerm(total, mean_reward, entropy, baseline)

    def add_to(self, loss_sum: torch.Tensor, reward: Callable[[], torch.Tensor], logs: dict[str, float]
               ) -> torch.Tensor:
        """The tasks' one call: ``loss_sum`` plus the attention term (unchanged when nothing was recorded),
        its figures added to ``logs``; ``reward()`` (B,) is computed only when a normalizer needs it."""
        if not self.active:
            return loss_sum
        term = self.loss(reward() if self.needs_reward else None)
        logs.update(term.logs())
        return loss_sum + term.loss_sum


def sampling_normalizers(model: nn.Module) -> list[SamplingNormalizer]:
    """The sampling normalizers of ``model`` (through DDP and ``torch.compile`` wrappers)."""
    return [m for m in model.modules() if isinstance(m, SamplingNormalizer)]


@contextmanager
def sampled_attention(model: nn.Module) -> Iterator[AttentionSamples]:
    """Arm every sampling normalizer of ``model`` for one forward pass: each training-mode call records its
    sample log-probabilities and entropies into the yielded :class:`AttentionSamples`; each normalizer in
    training mode counts the batch (``num_batches``, Gumbel's annealing clock). Outside the block nothing is
    recorded. The records (with their graphs) stay in the yielded object for :meth:`AttentionSamples.loss`."""
    samples = AttentionSamples()
    norms = sampling_normalizers(model)
    for norm in norms:
        samples.records[norm] = norm._records = []
    try:
        yield samples
    finally:
        for norm in norms:
            norm._records = None
            if norm.training:
                norm.num_batches += 1
