"""Greedy and beam search: beam 1 = greedy, batched = per sentence, GNMT length penalty, n-best, limits."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq_attn.translation.config import ModelConfig, RNNConfig
from seq2seq_attn.translation.models import Seq2SeqModel, build_model, gather_beams
from seq2seq_attn.translation.search import beam_search, greedy_search, length_penalty

BOS, EOS = 2, 3



def small_model(seed: int = 0, **rnn) -> Seq2SeqModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(rnn=RNNConfig(**{"emb_dim": 16, "enc_hidden": 16, "dec_hidden": 24, "dropout": 0.0, **rnn}))
    return build_model(cfg, 20, 12, 0).eval()


def random_batch(seed: int = 1, batch: int = 4, length: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 20, (batch, length), generator=g)
    lens = torch.randint(2, length + 1, (batch,), generator=g)
    lens[0] = length
    mask = torch.arange(length) >= lens.unsqueeze(1)
    return src.masked_fill(mask, 0), mask


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_beam_one_equals_greedy(decoder: str) -> None:
    model = small_model(decoder=decoder, score="additive" if decoder == "bahdanau" else "general")
    src, mask = random_batch()
    greedy = greedy_search(model, src, mask, BOS, EOS, max_len=12)
    beam = beam_search(model, src, mask, BOS, EOS, beam_size=1, alpha=0.0, max_len=12)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)
        torch.testing.assert_close(g[0].attention, b[0].attention)


def test_batched_beam_equals_per_sentence() -> None:
    model = small_model(decoder="luong", score="dot", dec_hidden=32)
    src, mask = random_batch(batch=5)
    limits = (~mask).sum(-1) + 3  # per-sentence limits, as the CLI computes them
    batched = beam_search(model, src, mask, BOS, EOS, beam_size=4, alpha=0.6, max_len=limits, n_best=3)
    for b in range(src.size(0)):
        n = int((~mask[b]).sum())
        alone = beam_search(model, src[b : b + 1, :n], mask[b : b + 1, :n], BOS, EOS, beam_size=4, alpha=0.6,
                            max_len=limits[b : b + 1], n_best=3)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[b]]
        for x, y in zip(alone, batched[b]):
            assert x.score == pytest.approx(y.score, abs=1e-5)
            torch.testing.assert_close(x.attention, y.attention, atol=1e-5, rtol=1e-4)


def test_n_best_sorted_distinct_and_bounded() -> None:
    model = small_model()
    src, mask = random_batch()
    out = beam_search(model, src, mask, BOS, EOS, beam_size=5, alpha=0.6, max_len=6, n_best=5)
    for hyps in out:
        assert 1 <= len(hyps) <= 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
        for h in hyps:
            assert len(h.tokens) <= 6
            assert h.attention.shape[0] == len(h.tokens) + 1
            assert h.score == pytest.approx(h.log_prob / length_penalty(len(h.tokens) + 1, 0.6), rel=1e-6)


def test_max_len_forces_eos() -> None:
    model = small_model()
    src, mask = random_batch()
    for hyps in greedy_search(model, src, mask, BOS, EOS, max_len=2):
        assert len(hyps[0].tokens) <= 2
    for hyps in beam_search(model, src, mask, BOS, EOS, beam_size=3, alpha=0.0, max_len=2):
        assert all(len(h.tokens) <= 2 for h in hyps)


class TableModel(Seq2SeqModel):
    """Log-probabilities depend only on the step: a model whose hypotheses' scores are known exactly."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.log(torch.tensor(table))  # (steps, V)

    def encode(self, src, src_pad_mask):
        return src_pad_mask

    def init_state(self, enc, beam_size):
        return torch.zeros(enc.size(0), beam_size, dtype=torch.long)

    def step(self, prev_tokens, state, enc):
        t = min(int(state[0, 0]), self.table.size(0) - 1)
        lp = self.table[t].expand(*prev_tokens.shape, -1)
        attn = torch.full((*prev_tokens.shape, enc.size(1)), 1.0 / enc.size(1))
        return lp, state + 1, attn

    def reorder_state(self, state, beam_index):
        return gather_beams(state, beam_index)


def test_length_penalty_changes_ranking() -> None:
    # vocab: 0 pad, 1 unk, 2 bos, 3 eos, 4 "a". Short hypothesis [] (EOS first), long one [a] EOS.
    p_eos0 = math.exp(-0.9)  # short: log p = -0.9
    p_a = 0.5
    p_eos1 = math.exp(-(1.0 - math.log(2)))  # long: log p = log 0.5 + log p_eos1 = -1.0
    rest = 1 - p_eos0 - p_a - 2e-9  # on unk, so that the row sums to one
    table = [[1e-9, rest, 1e-9, p_eos0, p_a], [1e-9, 1e-9, 1e-9, p_eos1, 1 - p_eos1 - 3e-9]]
    model = TableModel(table)
    src, mask = torch.tensor([[5, 6, 3]]), torch.zeros(1, 3, dtype=torch.bool)
    long_lp = math.log(p_a) + math.log(p_eos1)
    raw = beam_search(model, src, mask, BOS, EOS, beam_size=2, alpha=0.0, max_len=1, n_best=2)[0]
    assert raw[0].tokens == [] and raw[0].score == pytest.approx(-0.9, abs=1e-5)
    penalized = beam_search(model, src, mask, BOS, EOS, beam_size=2, alpha=1.0, max_len=1, n_best=2)[0]
    assert penalized[0].tokens == [4]
    # GNMT: score = log p / ((5 + |Y|) / 6) ** alpha, |Y| counting EOS.
    assert penalized[0].score == pytest.approx(long_lp / (7 / 6), abs=1e-5)
    assert penalized[1].score == pytest.approx(-0.9 / 1.0, abs=1e-5)
