"""One table of normalizers: each is built by name, respects masks, and trains inside every NLP model when
chosen from the config (``normalize: <name>``, ``temperature``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq_attn.attention import NORMALIZERS, Normalizer, build_normalizer, register_normalizer
from seq2seq_attn.classification.config import ClassificationConfig
from seq2seq_attn.classification.config import ModelConfig as ClsModelConfig
from seq2seq_attn.classification.models import build_model as build_classifier
from seq2seq_attn.config import ConfigError, from_dict
from seq2seq_attn.translation.config import ModelConfig, RNNConfig, TranslationConfig
from seq2seq_attn.translation.models import build_model as build_translator

NAMES = tuple(NORMALIZERS)


def test_the_table_holds_the_nlp_and_vision_normalizers():
    assert {"softmax", "sigmoid", "hard", "hard_sigmoid", "tanh", "count"} <= set(NAMES)
    scores = torch.tensor([[[-7.0, -1.0, 0.5, 2.0]]])  # (1, 1, 4)
    mask = torch.tensor([[[False, False, True, False]]])
    expected = {
        "sigmoid": torch.sigmoid(scores / 2), "hard_sigmoid": F.hardsigmoid(scores / 2),
        "tanh": torch.tanh(scores / 2), "count": scores / 2 / 3,  # 3 allowed keys
        "uniform": torch.full_like(scores, 1 / 3),  # mean pooling: the no-attention baseline
    }
    for name, want in expected.items():
        weights = build_normalizer(name, temperature=2.0)(scores, mask)
        torch.testing.assert_close(weights, want.masked_fill(mask, 0.0))
        assert (build_normalizer(name)(scores, torch.ones_like(mask)) == 0).all()  # no allowed key: zeros
    with pytest.raises(ValueError, match=r"normalize: unknown normalizer 'sparsemax' \(accepted: softmax, "):
        build_normalizer("sparsemax")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        build_normalizer("tanh", temperature=0.0)


def test_a_registered_normalizer_is_reachable_by_name_from_the_configs():
    @register_normalizer("_test_square")
    class Square(Normalizer):
        def forward(self, scores, mask=None):
            return (scores / self.temperature).square().masked_fill(mask, 0.0) if mask is not None else scores ** 2

    try:
        assert isinstance(build_normalizer("_test_square"), Square)
        assert RNNConfig(normalize="_test_square").normalize == "_test_square"
        with pytest.raises(ValueError, match="registered already"):
            register_normalizer("_test_square")(Square)
    finally:
        del NORMALIZERS["_test_square"]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(tq=st.integers(1, 3), tk=st.integers(1, 5), density=st.sampled_from([0.0, 0.4, 1.0]),
       seed=st.integers(0, 2**31 - 1))
def test_every_normalizer_keeps_the_mask_rule(name, tq, tk, density, seed):
    """Masked keys get exactly zero weight, a row with no allowed key is all zeros, gradients stay finite."""
    gen = torch.Generator().manual_seed(seed)
    scores = (torch.randn(2, tq, tk, generator=gen) * 5).requires_grad_(True)
    mask = torch.rand(2, tq, tk, generator=gen) < density
    mask[0, 0] = True  # at least one row with no allowed key
    weights = build_normalizer(name, temperature=0.8)(scores, mask)
    assert weights.shape == scores.shape and torch.isfinite(weights).all()
    assert (weights[mask] == 0).all() and (weights[0, 0] == 0).all()
    (weights * torch.randn(weights.shape, generator=gen)).sum().backward()
    assert torch.isfinite(scores.grad).all()


# -- every model trains with every normalizer ------------------------------------------------------------------

TRANSLATORS = [
    {"decoder": "bahdanau", "score": "additive"},
    {"decoder": "luong", "score": "general"},
    {"decoder": "luong", "score": "general", "attention": "local-p", "window": 2},
]


def _train(model, loss_fn, steps: int = 12) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model)
        opt.zero_grad()
        loss.backward()
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, bad
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("rnn", TRANSLATORS, ids=lambda r: f"{r['decoder']}-{r.get('attention', 'global')}")
@pytest.mark.parametrize("name", NAMES)
def test_rnn_translators_train_with_each_normalizer(name, rnn):
    torch.manual_seed(0)
    cfg = RNNConfig(emb_dim=8, enc_hidden=8, dec_hidden=12, dropout=0.0, normalize=name, temperature=0.7, **rnn)
    model = build_translator(ModelConfig(rnn=cfg), 12, 11, 0)
    assert isinstance(model.decoder.attention.normalize, NORMALIZERS[name])
    assert model.decoder.attention.normalize.temperature == 0.7
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(4, 12, (2, 5), generator=g), torch.randint(4, 11, (2, 4), generator=g)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])

    def loss_fn(m):
        logits = m(src.masked_fill(mask, 0), mask, tgt)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))

    losses = _train(model, loss_fn)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("kind", ["attention", "han"])
@pytest.mark.parametrize("name", NAMES)
def test_classifiers_train_with_each_normalizer(name, kind):
    torch.manual_seed(0)
    cfg = ClsModelConfig(type=kind, embed_dim=8, hidden_size=6, dropout=0.0, embed_dropout=0.0, normalize=name,
                         temperature=0.7)
    model = build_classifier(cfg, 20, 3)
    pools = [model.pool] if kind == "attention" else [model.word_pool, model.sentence_pool]
    assert all(isinstance(p.attention.normalize, NORMALIZERS[name]) for p in pools)
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 1, 2, 1])
    if kind == "attention":
        inputs = (torch.randint(3, 20, (4, 6), generator=g), torch.tensor([6, 4, 2, 5]))
    else:
        inputs = (torch.randint(3, 20, (4, 2, 3), generator=g), torch.tensor([[3, 2], [1, 0], [3, 3], [2, 1]]))
    losses = _train(model, lambda m: F.cross_entropy(m(*inputs).logits, labels))
    assert losses[-1] < 0.8 * losses[0], losses


# -- configs ------------------------------------------------------------------------------------------------------

_TRANSLATION = {"data": {"train": {"src": "a", "tgt": "b"}, "dev": {"src": "a", "tgt": "b"}}}
_CLASSIFICATION = {"data": {"train": "t.csv"}}


def test_configs_load_a_normalizer_by_name():
    cfg = from_dict(TranslationConfig, {**_TRANSLATION, "model": {"rnn": {"normalize": "hard", "temperature": 0.5}}})
    assert (cfg.model.rnn.normalize, cfg.model.rnn.temperature) == ("hard", 0.5)
    assert RNNConfig().normalize == "softmax" and ClsModelConfig().normalize == "softmax"
    cfg = from_dict(ClassificationConfig, {**_CLASSIFICATION, "model": {"type": "han", "normalize": "sigmoid"}})
    assert cfg.model.normalize == "sigmoid"


@pytest.mark.parametrize("top, data, model, message", [
    (TranslationConfig, _TRANSLATION, {"rnn": {"normalize": "sparse"}},
     r"c\.yaml: model\.rnn: normalize: unknown normalizer 'sparse' \(accepted: softmax, sigmoid, hard, "),
    (TranslationConfig, _TRANSLATION, {"rnn": {"temperature": 0}}, r"c\.yaml: model\.rnn: temperature must be > 0"),
    (ClassificationConfig, _CLASSIFICATION, {"normalize": "gumbel?"},
     r"c\.yaml: model: normalize: unknown normalizer 'gumbel\?' \(accepted: softmax, "),
    (ClassificationConfig, _CLASSIFICATION, {"type": "transformer", "normalize": "hard"},
     r"c\.yaml: model: normalize, temperature: only for type attention and han"),
])
def test_configs_reject_unknown_normalizers_naming_the_key(top, data, model, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(top, {**data, "model": model}, where="c.yaml")


def test_normalize_hard_trains_from_the_command_line_and_comes_back_with_the_run(tmp_path):
    """``--set model.rnn.normalize=hard`` reaches the decoder, is saved with the run and rebuilt on loading."""
    from test_translation_cli import tiny_config, tiny_corpus

    from seq2seq_attn.attention import HardMax
    from seq2seq_attn.cli import main
    from seq2seq_attn.translation.lifecycle import load_run

    src, tgt = tiny_corpus(tmp_path)
    config = tiny_config(tmp_path, src, tgt, decoder="luong", score="general", emb_dim=8, enc_hidden=8,
                         dec_hidden=16)
    assert main(["train", str(config), "--set", "model.rnn.normalize=hard", "--set", "model.rnn.temperature=0.5",
                 "--set", "training.max_epochs=2", "--set", "training.eval_every=1000"]) == 0
    run = load_run(tmp_path / "run", device="cpu", which="latest")
    attention = run.model.decoder.attention
    assert isinstance(attention.normalize, HardMax) and attention.normalize.temperature == 0.5
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
