"""Decoding options of the one search: each checked on a toy model with known log-probabilities (a bigram
table), and plain beam/greedy search checked against the search as it was before the options."""

from __future__ import annotations

import math

import pytest
import torch
from _search_reference import beam_search as reference_beam
from _search_reference import greedy_search as reference_greedy

from seq2seq_attn.translation.config import ModelConfig, RNNConfig, SearchOptions
from seq2seq_attn.translation.models import Seq2SeqModel, build_model, gather_beams
from seq2seq_attn.translation.models.transformer import TransformerSeq2Seq
from seq2seq_attn.translation.search import EnsembleModel, coverage_penalty, filter_logits, length_penalty, search
from seq2seq_attn.translation.transformer_config import TransformerConfig

BOS, EOS, A, B, C = 2, 3, 4, 5, 6
V = 7


class BigramModel(Seq2SeqModel):
    """Next-token probabilities depend only on the previous token: ``probs[prev]`` (V, V); the attention of a
    step is ``attn[prev]`` (V, S) (rows renormalized over the sentence's real source positions)."""

    def __init__(self, probs: dict[int, list[float]], attn: dict[int, list[float]] | None = None, src_len: int = 3):
        super().__init__()
        table = torch.full((V, V), 1e-9)
        for prev, row in probs.items():
            table[prev] = torch.tensor(row)
        self.lp = torch.log(table / table.sum(-1, keepdim=True))  # (V, V)
        att = torch.full((V, src_len), 1.0 / src_len)
        for prev, row in (attn or {}).items():
            att[prev] = torch.tensor(row)
        self.attn = att

    def encode(self, src, src_pad_mask):
        return src_pad_mask

    def init_state(self, enc, beam_size):
        return torch.zeros(enc.size(0), beam_size)

    def step(self, prev_tokens, state, enc):
        attn = self.attn[prev_tokens][..., : enc.size(1)].masked_fill(enc.unsqueeze(1), 0.0)
        return self.lp[prev_tokens], state, attn / attn.sum(-1, keepdim=True)

    def reorder_state(self, state, beam_index):
        return gather_beams(state, beam_index)


def row(**p: float) -> list[float]:
    """A probability row over the toy vocabulary (pad, unk, bos, eos, a, b, c) from named entries."""
    names = {"eos": EOS, "a": A, "b": B, "c": C}
    out = [0.0] * V
    for name, value in p.items():
        out[names[name]] = value
    return out


SRC, MASK = torch.tensor([[7, 8, EOS]]), torch.zeros(1, 3, dtype=torch.bool)
# Greedy loops "a b a b ...": bos -> a, a -> b, b -> a (eos is never the best).
LOOP = {BOS: row(a=0.6, b=0.2, c=0.1, eos=0.1), A: row(b=0.5, c=0.3, eos=0.2), B: row(a=0.5, c=0.1, eos=0.4),
        C: row(eos=0.9, a=0.1)}


def run(model, max_len=6, k=1, n_best=1, **options):
    return search(model, SRC, MASK, BOS, EOS, max_len, k, n_best, SearchOptions(alpha=0.0, **options))[0]


# -- plain search stays what it was ----------------------------------------------------------------------------


def _models() -> list[Seq2SeqModel]:
    torch.manual_seed(0)
    rnn = dict(emb_dim=16, enc_hidden=16, dec_hidden=24, dropout=0.0)
    bahdanau = build_model(ModelConfig(rnn=RNNConfig(**rnn)), 20, 12, 0)
    luong = build_model(ModelConfig(rnn=RNNConfig(**rnn, decoder="luong", score="general")), 20, 12, 0)
    cfg = TransformerConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=2, ffn_dim=32, dropout=0.0)
    transformer = TransformerSeq2Seq(20, 20, cfg, tie_embeddings=False, share_embeddings=False)
    return [m.eval() for m in (bahdanau, luong, transformer)]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_plain_search_is_the_search_from_before(index: int) -> None:
    model = _models()[index]
    g = torch.Generator().manual_seed(3)
    src = torch.randint(4, 12, (5, 8), generator=g)
    mask = torch.arange(8) >= torch.tensor([8, 3, 6, 2, 7]).unsqueeze(1)
    src = src.masked_fill(mask, 0)
    limits = (~mask).sum(-1) + 2
    for beam, alpha, n_best in [(3, 0.6, 2), (5, 0.0, 5), (4, 1.0, 1)]:
        new = search(model, src, mask, BOS, EOS, limits, beam, n_best, SearchOptions(alpha=alpha))
        old = reference_beam(model, src, mask, BOS, EOS, beam, alpha, limits, n_best)
        for x_list, y_list in zip(new, old):
            assert [(h.tokens, h.score, h.log_prob, h.finished) for h in x_list] == \
                   [(h.tokens, h.score, h.log_prob, h.finished) for h in y_list]
            for x, y in zip(x_list, y_list):
                assert torch.equal(x.attention, y.attention)
    greedy_new = search(model, src, mask, BOS, EOS, limits, 1, 1, SearchOptions(alpha=0.6))
    for x, y in zip(greedy_new, reference_greedy(model, src, mask, BOS, EOS, limits, 0.6)):
        assert x[0].tokens == y[0].tokens
        assert x[0].score == pytest.approx(y[0].score, abs=1e-5)
        torch.testing.assert_close(x[0].attention, y[0].attention)


# -- each option on the toy model ----------------------------------------------------------------------------


def test_toy_model_greedy_loops() -> None:
    hyp = run(BigramModel(LOOP), max_len=4)[0]
    assert hyp.tokens == [A, B, A, B] and not hyp.finished
    want = math.log(0.6) + math.log(0.5) + math.log(0.5) + math.log(0.5) + math.log(0.4)  # ... then forced EOS
    assert hyp.log_prob == pytest.approx(want, abs=1e-5)


def test_no_repeat_ngram_blocks_the_loop() -> None:
    # n = 2: after "a b a", the bigram "a b" may not come again: a -> c (0.3), then c -> eos (0.9).
    hyp = run(BigramModel(LOOP), max_len=8, no_repeat_ngram_size=2)[0]
    assert hyp.tokens == [A, B, A, C] and hyp.finished
    assert hyp.log_prob == pytest.approx(math.log(0.6 * 0.5 * 0.5 * 0.3 * 0.9), abs=1e-5)
    # n = 1: no token twice: a, b, then a is banned after b -> eos (0.4) beats c (0.1).
    assert run(BigramModel(LOOP), max_len=8, no_repeat_ngram_size=1)[0].tokens == [A, B]
    # n = 3: after "a b a b", "a" would repeat the trigram "a b a": banned; from b, eos (0.4) beats c (0.1).
    assert run(BigramModel(LOOP), max_len=8, no_repeat_ngram_size=3)[0].tokens == [A, B, A, B]


def test_repetition_penalty_hand_computed() -> None:
    # theta = 2: after "a b", a (seen) scores 2 * log 0.5 = -1.386 < log 0.4 = -0.916 (eos): the search stops.
    hyp = run(BigramModel(LOOP), max_len=8, repetition_penalty=2.0)[0]
    assert hyp.tokens == [A, B] and hyp.finished
    assert hyp.log_prob == pytest.approx(math.log(0.6) + math.log(0.5) + math.log(0.4), abs=1e-5)
    # theta = 1.2: 1.2 * log 0.5 = -0.832 > -0.916: a comes again; then b (seen, from a): 1.2 * log 0.5 = -0.832
    # beats eos after a (log 0.2) and c (log 0.3) -> the loop continues to the limit.
    hyp = run(BigramModel(LOOP), max_len=4, repetition_penalty=1.2)[0]
    assert hyp.tokens == [A, B, A, B]
    want = math.log(0.6) + math.log(0.5) + 1.2 * math.log(0.5) * 2 + math.log(0.4)
    assert hyp.log_prob == pytest.approx(want, abs=1e-5)


def test_coverage_penalty_hand_computed_and_reranks() -> None:
    # Two finished hypotheses: "c" (bos -> c -> eos) and "a" (bos -> a -> eos). "a" is more probable, but its
    # attention stays on source position 0; "c" attends to every position.
    probs = {BOS: row(a=0.5, c=0.4, eos=0.1), A: row(eos=1.0), C: row(eos=1.0)}
    attn = {BOS: [1 / 3, 1 / 3, 1 / 3], A: [0.98, 0.01, 0.01], C: [0.1, 0.45, 0.45]}
    model = BigramModel(probs, attn)
    plain = run(model, max_len=2, k=2, n_best=2)
    assert [h.tokens for h in plain] == [[A], [C]]
    beta = 0.5
    hyps = run(model, max_len=2, k=2, n_best=2, coverage_beta=beta)
    # coverage of "a": rows (bos step, a step) summed = (1/3 + 0.98, 1/3 + 0.01, 1/3 + 0.01) -> min(., 1)
    cp_a = beta * (math.log(1.0) + 2 * math.log(1 / 3 + 0.01))
    cp_c = beta * (math.log(1 / 3 + 0.1) + 2 * math.log(1 / 3 + 0.45))
    assert [h.tokens for h in hyps] == [[C], [A]]
    assert hyps[0].score == pytest.approx(math.log(0.4) + cp_c, abs=1e-5)
    assert hyps[1].score == pytest.approx(math.log(0.5) + cp_a, abs=1e-5)
    assert coverage_penalty(torch.tensor([[0.5, 0.0], [0.7, 0.0]]), 1.0) < -80  # an unattended position: log(tiny)


def test_forced_prefix_per_sentence() -> None:
    model = BigramModel(LOOP)
    src, mask = torch.tensor([[7, 8, EOS], [7, EOS, 0]]), torch.tensor([[False] * 3, [False, False, True]])
    out = search(model, src, mask, BOS, EOS, 6, 3, 3, SearchOptions(alpha=0.0), prefixes=[[C, A], []])
    first = out[0]
    assert all(h.tokens[:2] == [C, A] for h in first) and len({tuple(h.tokens) for h in first}) == len(first)
    # bos -> c (0.1), c -> a (0.1) forced; then a -> c -> eos (0.3 * 0.9) beats a -> eos (0.2).
    assert [h.tokens for h in first[:2]] == [[C, A, C], [C, A]]
    assert first[0].log_prob == pytest.approx(math.log(0.1 * 0.1 * 0.3 * 0.9), abs=1e-5)
    assert first[1].log_prob == pytest.approx(math.log(0.1 * 0.1 * 0.2), abs=1e-5)
    assert out[1][0].tokens[:1] == [A]  # the sentence without a prefix decodes freely
    # A prefix longer than the length limit is kept whole (the limit grows to it).
    long = search(model, SRC, MASK, BOS, EOS, 1, 1, 1, SearchOptions(alpha=0.0), prefixes=[[C, A, B]])[0][0]
    assert long.tokens == [C, A, B] and not long.finished


def test_filter_logits_top_k_top_p() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = lambda x: torch.isfinite(x).tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False]
    # cumulative before each token: 0, 0.5, 0.8, 0.95 -> top_p 0.8 keeps the first two, 0.81 three.
    assert kept(filter_logits(logits, top_p=0.8)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.81)) == [True, True, True, False]
    assert kept(filter_logits(logits, top_p=0.1)) == [True, False, False, False]
    assert kept(filter_logits(logits[[2, 0, 3, 1]], top_k=3, top_p=0.95)) == [True, True, False, True]


def test_sampling_matches_the_distribution_and_is_seeded() -> None:
    model = BigramModel(LOOP)
    k = 4000  # samples of one sentence, drawn in one search
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.0, 2, 1.0), (1.0, 0, 0.7)]:
        opts = SearchOptions(alpha=0.0, sampling=True, temperature=temperature, top_k=top_k, top_p=top_p, seed=1)
        gen = torch.Generator().manual_seed(1)
        hyps = search(model, SRC, MASK, BOS, EOS, 1, k, k, opts, generator=gen)[0]
        assert len(hyps) == k
        first = torch.tensor([h.tokens[0] if h.tokens else EOS for h in hyps])
        p = torch.tensor(LOOP[BOS]) ** (1 / temperature)
        if top_k:
            p[p < p.topk(top_k).values[-1]] = 0
        if top_p < 1:  # 0.6 (a) alone is below 0.7: a and b stay
            p[[C, EOS]] = 0
        p = p / p.sum()
        freq = torch.bincount(first, minlength=V).float() / k
        assert torch.allclose(freq, p, atol=0.03), (temperature, top_k, top_p, freq, p)
        # Scores are the model's log-probabilities (not tempered): "a" then forced EOS at the limit.
        a = next(h for h in hyps if h.tokens == [A])
        assert a.log_prob == pytest.approx(math.log(0.6 * 0.2), abs=1e-5)
    opts = SearchOptions(alpha=0.0, sampling=True, seed=1)
    draw = lambda s: [h.tokens for h in search(model, SRC, MASK, BOS, EOS, 6, 8, 8, opts,  # noqa: E731
                                               generator=torch.Generator().manual_seed(s))[0]]
    assert draw(5) == draw(5) and draw(5) != draw(6)
    # top_k = 1 is greedy.
    greedy = run(model, max_len=5)[0].tokens
    assert run(model, max_len=5, sampling=True, top_k=1)[0].tokens == greedy


def test_ensemble_averages_log_probabilities() -> None:
    other = {BOS: row(a=0.2, b=0.7, c=0.05, eos=0.05), A: row(b=0.1, c=0.8, eos=0.1),
             B: row(a=0.3, c=0.3, eos=0.4), C: row(eos=0.5, a=0.5)}
    m1, m2 = BigramModel(LOOP), BigramModel(other)
    ensemble = EnsembleModel([m1, m2])
    # Hand: the ensemble is the bigram table log_softmax((log p1 + log p2) / 2).
    mean = BigramModel({})
    mean.lp = torch.log_softmax((m1.lp + m2.lp) / 2, dim=-1)
    for k in (1, 3):
        got = run(ensemble, max_len=5, k=k, n_best=k)
        want = run(mean, max_len=5, k=k, n_best=k)
        assert [h.tokens for h in got] == [h.tokens for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
    # bos: sqrt(0.6 * 0.2) = 0.346 for a, sqrt(0.2 * 0.7) = 0.374 for b: the ensemble starts with b.
    assert run(ensemble, max_len=5)[0].tokens[0] == B
    with pytest.raises(ValueError, match="different target vocabulary sizes"):
        EnsembleModel.combine([torch.zeros(1, 5), torch.zeros(1, 6)])
    with pytest.raises(ValueError, match="at least two"):
        EnsembleModel([m1])


def test_options_checked() -> None:
    for key, value in [("temperature", 0.0), ("top_p", 0.0), ("top_k", -1), ("repetition_penalty", 0.5),
                       ("no_repeat_ngram_size", -1), ("coverage_beta", -1.0), ("alpha", -0.1)]:
        with pytest.raises(ValueError, match=key):
            SearchOptions(**{key: value})
    assert length_penalty(1, 0.0) == 1.0
