"""The greedy and beam search as they were before the decoding options of issue 17 (a frozen copy, test-only):
the one search implementation must give exactly these results when no option is set."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq_attn.translation.models.base import Seq2SeqModel


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without BOS and EOS
    score: float  # length-penalized log-probability
    log_prob: float  # raw log-probability of tokens (+ EOS when finished)
    attention: torch.Tensor  # (len(tokens) + 1, src_len): one row per generated token and the final EOS
    finished: bool = True  # False when EOS was forced at the maximum length


def length_penalty(length: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """GNMT length penalty ``((5 + length) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha


def _max_lengths(max_len: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if isinstance(max_len, int):
        return torch.full((batch,), max_len, dtype=torch.long, device=device)
    return max_len.to(device=device, dtype=torch.long)


@torch.no_grad()
def greedy_search(model: Seq2SeqModel, src: torch.Tensor, src_pad_mask: torch.Tensor, bos: int, eos: int,
                  max_len: int | torch.Tensor, alpha: float = 0.0) -> list[list[Hypothesis]]:
    """Arg-max decoding. ``max_len`` (int or (B,) long): most tokens per sentence before EOS; at that length
    EOS is forced."""
    batch = src.size(0)
    limits = _max_lengths(max_len, batch, src.device)
    src_lens = (~src_pad_mask).sum(-1).tolist()
    enc = model.encode(src, src_pad_mask)
    state = model.init_state(enc, 1)
    prev = torch.full((batch, 1), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    tokens, attns, log_probs = [], [], []
    forced = torch.zeros(batch, dtype=torch.bool, device=src.device)  # EOS forced at the length limit
    for t in range(int(limits.max().item()) + 1):
        lp, state, attn = model.step(prev, state, enc)  # (B, 1, V), state, (B, 1, S)
        lp = lp[:, 0]  # (B, V)
        best = lp.argmax(dim=-1)  # (B,)
        at_limit = (limits <= t) & ~done  # no room for another token: end with EOS
        forced |= at_limit & (best != eos)
        best = torch.where(at_limit, torch.full_like(best, eos), best)
        tokens.append(best)
        attns.append(attn[:, 0])
        log_probs.append(lp.gather(1, best.unsqueeze(1)).squeeze(1))
        done |= best == eos
        if bool(done.all()):
            break
        prev = best.unsqueeze(1)
    toks = torch.stack(tokens, 1).tolist()  # (B, T)
    attn_all = torch.stack(attns, 1)  # (B, T, S)
    lps = torch.stack(log_probs, 1)  # (B, T)
    results = []
    for b in range(batch):
        n = toks[b].index(eos)  # every sentence ends with EOS (forced at its limit)
        log_prob = float(lps[b, : n + 1].sum())
        hyp = Hypothesis(toks[b][:n], log_prob / float(length_penalty(n + 1, alpha)), log_prob,
                         attn_all[b, : n + 1, : src_lens[b]].cpu(), not bool(forced[b]))
        results.append([hyp])
    return results


@torch.no_grad()
def beam_search(model: Seq2SeqModel, src: torch.Tensor, src_pad_mask: torch.Tensor, bos: int, eos: int,
                beam_size: int, alpha: float, max_len: int | torch.Tensor, n_best: int = 1) -> list[list[Hypothesis]]:
    """Batched beam search; returns per sentence its ``n_best`` hypotheses, best first."""
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam_size={beam_size}")
    batch, k, device = src.size(0), beam_size, src.device
    limits = _max_lengths(max_len, batch, device)
    src_lens = (~src_pad_mask).sum(-1).tolist()
    enc = model.encode(src, src_pad_mask)
    state = model.init_state(enc, k)
    prev = torch.full((batch, k), bos, dtype=torch.long, device=device)
    # Only beam 0 is live at the start: the K initial hypotheses are identical.
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.empty((batch, k, 0), dtype=torch.long, device=device)  # tokens so far
    attn_hist: torch.Tensor | None = None  # (B, K, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = [True] * batch
    for t in range(int(limits.max().item()) + 1):
        lp, state, attn = model.step(prev, state, enc)  # (B, K, V), state, (B, K, S)
        vocab = lp.size(-1)
        cand = scores.unsqueeze(-1) + lp  # (B, K, V)
        at_limit = limits <= t  # (B,): this step may only end hypotheses
        if bool(at_limit.any()):
            # Sentences at their limit: every live hypothesis ends here with EOS forced.
            only_eos = torch.full_like(cand, float("-inf"))
            only_eos[..., eos] = cand[..., eos]
            cand = torch.where(at_limit.view(-1, 1, 1), only_eos, cand)
        top_scores, top_ids = cand.view(batch, -1).topk(2 * k, dim=-1)  # (B, 2K)
        top_beam = top_ids // vocab
        top_tok = top_ids % vocab
        step_attn = attn.unsqueeze(2)  # (B, K, 1, S)
        attn_hist = step_attn if attn_hist is None else torch.cat([attn_hist, step_attn], 2)
        is_eos = (top_tok == eos) & torch.isfinite(top_scores)
        # Finish EOS candidates among the best K (fairseq); a sentence at its limit finishes K of them.
        for b, j in (is_eos[:, :k]).nonzero().tolist():
            if not active[b] or len(finished[b]) >= k:
                continue
            beam = int(top_beam[b, j])
            log_prob = float(top_scores[b, j])
            finished[b].append(Hypothesis(
                history[b, beam].tolist(), log_prob / float(length_penalty(t + 1, alpha)), log_prob,
                attn_hist[b, beam, :, : src_lens[b]].cpu(), not bool(at_limit[b])))
        for b in range(batch):
            if active[b] and (len(finished[b]) >= k or bool(at_limit[b])):
                active[b] = False
        if not any(active):
            break
        # Continue with the best K candidates that do not end in EOS.
        cont_scores = top_scores.masked_fill(is_eos, float("-inf"))
        cont_scores, pick = cont_scores.topk(k, dim=-1)  # (B, K)
        beam_index = top_beam.gather(1, pick)
        new_tok = top_tok.gather(1, pick)
        scores = cont_scores
        history = torch.cat([history.gather(1, beam_index.unsqueeze(-1).expand_as(history)), new_tok.unsqueeze(-1)], -1)
        attn_hist = attn_hist.gather(1, beam_index.view(batch, k, 1, 1).expand_as(attn_hist))
        state = model.reorder_state(state, beam_index)
        prev = new_tok
    results = []
    for b in range(batch):
        hyps = sorted(finished[b], key=lambda h: h.score, reverse=True)
        results.append(hyps[:n_best])
    return results
