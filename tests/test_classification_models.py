"""Classifier models: masks, padding invariance, weights that sum to one, HAN's sentence handling."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.attention import AdditiveScore, Attention, DotScore, GeneralScore, ScaledDotScore
from seq2seq_attn.classification.config import ModelConfig
from seq2seq_attn.classification.models import HAN, AttentionClassifier, QueryAttentionPooling, build_model

V, C = 50, 3


def flat_models() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    models = [
        AttentionClassifier(V, C, 16, 12, encoder="lstm", score="additive"),
        AttentionClassifier(V, C, 16, 12, encoder="gru", score="scaled_dot"),
        AttentionClassifier(V, C, 16, 12, encoder="none", score="additive"),
        AttentionClassifier(V, C, 16, 12, encoder="lstm", score="additive", num_queries=3),
    ]
    for pooling in ("attention", "mean", "cls"):
        models.append(build_model(ModelConfig(type="transformer", embed_dim=16, num_heads=2, ff_dim=32,
                                              num_layers=2, pooling=pooling), V, C))
    return [m.eval() for m in models]


def test_pooling_is_the_core_attention_with_a_learned_query():
    pool = QueryAttentionPooling(8, "scaled_dot")
    assert isinstance(pool.attention, Attention) and isinstance(pool.attention.score, ScaledDotScore)
    assert isinstance(QueryAttentionPooling(8, "additive").attention.score, AdditiveScore)
    assert pool.query.shape == (1, 1, 8)
    states = torch.randn(3, 5, 8)
    pooled, weights = pool(states, torch.zeros(3, 5, dtype=torch.bool))
    expected = torch.softmax(states @ pool.query[0, 0] / 8 ** 0.5, dim=-1)  # q . h / sqrt(d)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(pooled, (expected.unsqueeze(-1) * states).sum(1))
    # Luong's dot and general (bilinear) scores pool too: softmax(q . h) and softmax(q W h)
    dot, general = QueryAttentionPooling(8, "dot"), QueryAttentionPooling(8, "general")
    assert isinstance(dot.attention.score, DotScore) and isinstance(general.attention.score, GeneralScore)
    _, weights = dot(states, torch.zeros(3, 5, dtype=torch.bool))
    torch.testing.assert_close(weights, torch.softmax(states @ dot.query[0, 0], dim=-1))
    with pytest.raises(ValueError, match="unknown pooling score 'location'"):
        QueryAttentionPooling(8, "location")


def test_several_queries_pool_independently_and_concatenate():
    pool = QueryAttentionPooling(8, "scaled_dot", num_queries=3)
    states = torch.randn(2, 5, 8)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    pooled, weights = pool(states, mask)
    assert pooled.shape == (2, 24) and pool.output_size == 24
    per_query = []
    for r in range(3):
        one = QueryAttentionPooling(8, "scaled_dot")
        one.query.data = pool.query.data[:, r:r + 1]
        p, w = one(states, mask)
        torch.testing.assert_close(pooled[:, 8 * r:8 * (r + 1)], p)  # query r's own pooled vector
        per_query.append(w)
    torch.testing.assert_close(weights, torch.stack(per_query).mean(0))  # shown: the mean over the queries
    with pytest.raises(ValueError, match="num_queries must be >= 1"):
        QueryAttentionPooling(8, num_queries=0)


@pytest.mark.parametrize("index", range(7))
def test_masked_tokens_get_zero_weight_and_weights_sum_to_one(index):
    model = flat_models()[index]
    tokens = torch.randint(3, V, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    with torch.no_grad():
        out = model(tokens, lengths)
    assert out.logits.shape == (3, C)
    assert out.token_weights.shape == (3, 7)
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(out.token_weights[b, n:] == 0)
        assert torch.all(out.token_weights[b, :n] > 0)
    torch.testing.assert_close(out.token_weights.sum(-1), torch.ones(3))


@pytest.mark.parametrize("index", range(7))
def test_padding_does_not_change_the_prediction(index):
    model = flat_models()[index]
    doc = torch.randint(3, V, (1, 5))
    with torch.no_grad():
        alone = model(doc, torch.tensor([5]))
        # The same document padded to 11 positions (pad id 0, and also garbage ids: the mask must hide them).
        for fill in (0, 7):
            padded = torch.cat([doc, torch.full((1, 6), fill)], dim=1)
            other = torch.randint(3, V, (1, 11))
            out = model(torch.cat([padded, other]), torch.tensor([5, 11]))
            torch.testing.assert_close(out.logits[0], alone.logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.token_weights[0, :5], alone.token_weights[0], atol=1e-5, rtol=1e-5)


def han() -> HAN:
    torch.manual_seed(0)
    return HAN(V, C, embed_dim=16, hidden_size=8).eval()


def test_han_one_sentence_documents():
    model = han()
    tokens = torch.randint(3, V, (2, 1, 6))
    with torch.no_grad():
        out = model(tokens, torch.tensor([[6], [3]]))
    assert out.logits.shape == (2, C) and torch.isfinite(out.logits).all()
    torch.testing.assert_close(out.sentence_weights, torch.ones(2, 1))  # one sentence takes all the weight
    torch.testing.assert_close(out.token_weights.sum(-1), torch.ones(2, 1))
    assert torch.all(out.token_weights[1, 0, 3:] == 0)


def test_han_empty_sentences_and_padding_do_not_change_the_prediction():
    model = han()
    s1, s2 = torch.randint(3, V, (4,)), torch.randint(3, V, (2,))
    compact = torch.zeros(1, 2, 4, dtype=torch.long)
    compact[0, 0], compact[0, 1, :2] = s1, s2
    with torch.no_grad():
        ref = model(compact, torch.tensor([[4, 2]]))
        # Empty sentences before, between and after, wider sentence padding, and a second document.
        spread = torch.zeros(2, 5, 6, dtype=torch.long)
        spread[0, 1, :4], spread[0, 3, :2] = s1, s2
        spread[1] = torch.randint(3, V, (5, 6))
        out = model(spread, torch.tensor([[0, 4, 0, 2, 0], [6, 6, 1, 3, 5]]))
        # A document whose sentences are all empty: no NaN, all weights zero.
        empty = model(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    torch.testing.assert_close(out.logits[0], ref.logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.sentence_weights[0, [1, 3]], ref.sentence_weights[0], atol=1e-5, rtol=1e-5)
    assert torch.all(out.sentence_weights[0, [0, 2, 4]] == 0)
    torch.testing.assert_close(out.sentence_weights.sum(-1), torch.ones(2))
    torch.testing.assert_close(out.token_weights[0, 1, :4], ref.token_weights[0, 0], atol=1e-5, rtol=1e-5)
    assert torch.all(out.token_weights[0, 0] == 0) and torch.all(out.token_weights[0, 3, 2:] == 0)
    assert torch.isfinite(empty.logits).all() and torch.all(empty.sentence_weights == 0)


def test_gradients_reach_every_parameter():
    for model in [*flat_models()[:3], han()]:
        model.train()
        if isinstance(model, HAN):
            out = model(torch.randint(3, V, (2, 3, 4)), torch.tensor([[4, 2, 0], [1, 4, 4]]))
        else:
            out = model(torch.randint(3, V, (2, 6)), torch.tensor([6, 3]))
        out.logits.sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, missing
