"""The one search over any :class:`~seq2seq_attn.translation.models.base.Seq2SeqModel`: beam search, greedy
search (beam 1) and sampling, with the step rules of :mod:`.scores`.

Hypotheses keep a (batch, beam) layout and finish fairseq-style: each step takes the ``2K`` best continuations
(beam search) or one drawn token per hypothesis (sampling), moves those ending in EOS (among the best ``K``) to
the sentence's finished list and keeps the best ``K`` others. Finished hypotheses are ranked by
``score = log p(Y) / lp(Y) + cp(X; Y)`` (Wu et al., 2016, "Google's Neural Machine Translation System"), with
the GNMT length penalty ``lp(Y) = ((5 + |Y|) / 6) ** alpha``, ``|Y|`` counting the generated tokens including
EOS, and the coverage penalty ``cp`` (0 unless ``coverage_beta``). A sentence stops when it has ``K`` finished
hypotheses or reaches its maximum length (its live hypotheses then end with a forced EOS).

``log p(Y)`` sums the step scores the search ranked by: the model's log-probabilities, after the repetition
penalty where one is set. A forced prefix (per sentence) is the start of every hypothesis of that sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import SearchOptions
from ..models.base import Seq2SeqModel
from .sampling import sample_next
from .scores import (
    block_repeated_ngrams,
    coverage_penalty,
    force_tokens,
    length_penalty,
    penalize_repetitions,
    prefix_column,
)


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids (a forced prefix included), without BOS and EOS
    score: float  # log_prob / length penalty + coverage penalty
    log_prob: float  # summed step scores of tokens (+ EOS when finished)
    attention: torch.Tensor  # (len(tokens) + 1, src_len): one row per generated token and the final EOS
    finished: bool = True  # False when EOS was forced at the maximum length


def _max_lengths(max_len: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if isinstance(max_len, int):
        return torch.full((batch,), max_len, dtype=torch.long, device=device)
    return max_len.to(device=device, dtype=torch.long)


def _prefix_table(prefixes: Sequence[Sequence[int]], batch: int, device: torch.device) -> torch.Tensor:
    """(B, P) long, each sentence's forced tokens padded with -1."""
    if len(prefixes) != batch:
        raise ValueError(f"got {len(prefixes)} prefixes for {batch} sentences")
    table = torch.full((batch, max(1, max(map(len, prefixes)))), -1, dtype=torch.long)
    for b, p in enumerate(prefixes):
        table[b, : len(p)] = torch.tensor(list(p), dtype=torch.long)
    return table.to(device)


def step_scores(lp: torch.Tensor, history: torch.Tensor, t: int, opts: SearchOptions, limits: torch.Tensor,
                eos: int, prefix: torch.Tensor | None) -> torch.Tensor:
    """The scores the search ranks step ``t``'s tokens by: ``lp`` (B, K, V) model log-probabilities after the
    repetition penalty and n-gram blocking, with the prefix token or (at the length limit) EOS forced."""
    raw = lp
    lp = penalize_repetitions(lp, history, opts.repetition_penalty)
    lp = block_repeated_ngrams(lp, history, opts.no_repeat_ngram_size)
    if prefix is not None:
        lp = force_tokens(lp, raw, prefix_column(prefix, t))
    at_limit = limits <= t  # (B,): no room for another token: every live hypothesis ends with EOS
    if bool(at_limit.any()):
        lp = force_tokens(lp, raw, torch.where(at_limit, eos, -1))
    return lp


def _finish(finished: list[list[Hypothesis]], active: list[bool], k: int, t: int, top_scores: torch.Tensor,
            top_beam: torch.Tensor, is_eos: torch.Tensor, history: torch.Tensor, attn_hist: torch.Tensor,
            src_lens: list[int], at_limit: torch.Tensor, opts: SearchOptions) -> None:
    """Move the EOS candidates among the best K (fairseq) to the finished lists; retire full sentences."""
    for b, j in (is_eos[:, :k]).nonzero().tolist():
        if not active[b] or len(finished[b]) >= k:
            continue
        beam = int(top_beam[b, j])
        log_prob = float(top_scores[b, j])
        attention = attn_hist[b, beam, :, : src_lens[b]].cpu()
        score = log_prob / float(length_penalty(t + 1, opts.alpha)) + coverage_penalty(attention, opts.coverage_beta)
        finished[b].append(Hypothesis(history[b, beam].tolist(), score, log_prob, attention, not bool(at_limit[b])))
    for b in range(len(active)):
        if active[b] and (len(finished[b]) >= k or bool(at_limit[b])):
            active[b] = False


@torch.no_grad()
def search(model: Seq2SeqModel, src: torch.Tensor, src_pad_mask: torch.Tensor, bos: int, eos: int,
           max_len: int | torch.Tensor, beam_size: int = 5, n_best: int = 1, options: SearchOptions | None = None,
           prefixes: Sequence[Sequence[int]] | None = None, generator: torch.Generator | None = None
           ) -> list[list[Hypothesis]]:
    """Search ``src`` (B, S) long with ``src_pad_mask`` (B, S) bool (True = pad); returns per sentence its
    ``n_best`` finished hypotheses, best first.

    ``max_len`` (int or (B,) long): most tokens per sentence before EOS (at that length EOS is forced; at least
    the prefix length). ``beam_size`` K: beam width, or the number of samples with ``options.sampling``.
    ``prefixes``: per sentence the target ids every hypothesis must start with. ``generator``: the random
    source of sampling. Raises ``ValueError`` for ``n_best`` outside ``1..K``.
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
    opts = SearchOptions() if options is None else options
    batch, k, device = src.size(0), beam_size, src.device
    limits = _max_lengths(max_len, batch, device)
    prefix = None if prefixes is None else _prefix_table(prefixes, batch, device)
    if prefix is not None:
        limits = torch.maximum(limits, (prefix >= 0).sum(-1))
    src_lens = (~src_pad_mask).sum(-1).tolist()
    enc = model.encode(src, src_pad_mask)
    state = model.init_state(enc, k)
    prev = torch.full((batch, k), bos, dtype=torch.long, device=device)
    # Beam search: only beam 0 is live at the start (the K initial hypotheses are identical); sampling: all K.
    scores = torch.full((batch, k), 0.0 if opts.sampling else float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.empty((batch, k, 0), dtype=torch.long, device=device)  # tokens so far
    attn_hist: torch.Tensor | None = None  # (B, K, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = [True] * batch
    for t in range(int(limits.max().item()) + 1):
        lp, state, attn = model.step(prev, state, enc)  # (B, K, V), state, (B, K, S)
        lp = step_scores(lp, history, t, opts, limits, eos, prefix)
        if opts.sampling:
            top_scores, top_beam, top_tok = sample_next(scores, lp, opts.temperature, opts.top_k, opts.top_p,
                                                        generator)  # (B, K) each
        else:
            vocab = lp.size(-1)
            cand = scores.unsqueeze(-1) + lp  # (B, K, V)
            top_scores, top_ids = cand.view(batch, -1).topk(2 * k, dim=-1)  # (B, 2K)
            top_beam, top_tok = top_ids // vocab, top_ids % vocab
        step_attn = attn.unsqueeze(2)  # (B, K, 1, S)
        attn_hist = step_attn if attn_hist is None else torch.cat([attn_hist, step_attn], 2)
        is_eos = (top_tok == eos) & torch.isfinite(top_scores)
        _finish(finished, active, k, t, top_scores, top_beam, is_eos, history, attn_hist, src_lens, limits <= t, opts)
        if not any(active):
            break
        # Continue with the best K candidates that do not end in EOS.
        cont_scores, pick = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=-1)  # (B, K)
        beam_index = top_beam.gather(1, pick)
        new_tok = top_tok.gather(1, pick)
        scores = cont_scores
        history = torch.cat([history.gather(1, beam_index.unsqueeze(-1).expand_as(history)), new_tok.unsqueeze(-1)], -1)
        attn_hist = attn_hist.gather(1, beam_index.view(batch, k, 1, 1).expand_as(attn_hist))
        state = model.reorder_state(state, beam_index)
        prev = new_tok
    return [sorted(f, key=lambda h: h.score, reverse=True)[:n_best] for f in finished]


def beam_search(model: Seq2SeqModel, src: torch.Tensor, src_pad_mask: torch.Tensor, bos: int, eos: int,
                beam_size: int, alpha: float, max_len: int | torch.Tensor, n_best: int = 1) -> list[list[Hypothesis]]:
    """Plain batched beam search (:func:`search` with the length penalty ``alpha`` only)."""
    return search(model, src, src_pad_mask, bos, eos, max_len, beam_size, n_best, SearchOptions(alpha=alpha))


def greedy_search(model: Seq2SeqModel, src: torch.Tensor, src_pad_mask: torch.Tensor, bos: int, eos: int,
                  max_len: int | torch.Tensor, alpha: float = 0.0) -> list[list[Hypothesis]]:
    """Arg-max decoding: :func:`search` with beam 1."""
    return search(model, src, src_pad_mask, bos, eos, max_len, 1, 1, SearchOptions(alpha=alpha))
