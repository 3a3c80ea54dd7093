"""Stochastic hard attention (``categorical``: Xu et al., 2015; ``gumbel``: Jang et al., 2017): an unbiased
REINFORCE estimator, Gumbel samples at the softmax frequencies, deterministic evaluation, masks, options from
the configs, the tasks' REINFORCE term, and an exact resume."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from seq2seq_attn.attention import (
    CategoricalSample,
    GumbelSoftmax,
    build_normalizer,
    masked_softmax,
    sampled_attention,
)
from seq2seq_attn.classification.config import ClassificationConfig
from seq2seq_attn.cli import main
from seq2seq_attn.config import ConfigError, from_dict
from seq2seq_attn.translation.config import TranslationConfig


def test_reinforce_gradient_is_unbiased_on_a_toy_problem():
    """Reward r_k for choosing key k: E[R] = sum_k p_k r_k, whose exact gradient is p_k (r_k - E[R]). The mean
    REINFORCE gradient over many samples (with a constant baseline) matches it."""
    torch.manual_seed(0)
    theta = torch.tensor([0.3, -1.0, 0.8, 0.1], requires_grad=True)
    r = torch.tensor([1.0, -2.0, 0.5, 3.0])
    n = 200_000
    norm = CategoricalSample(expectation_prob=0.0)
    norm.baseline.fill_(0.7)
    norm.num_updates.fill_(1)  # baseline in use, as after a first batch
    with sampled_attention(norm) as samples:
        weights = norm(theta.expand(n, 1, 4))  # (N, 1, 4) one-hot samples
    reward = (weights.squeeze(1) * r).sum(-1)  # (N,)
    term = samples.loss(reward)
    (term.loss_sum / n).backward()  # the loss is -sum (R - b) log p(s): its gradient estimates -grad E[R]
    p = torch.softmax(theta.detach(), -1)
    exact = p * (r - (p * r).sum())
    torch.testing.assert_close(-theta.grad, exact, atol=0.02, rtol=0.0)
    assert torch.allclose(weights.sum(-1), torch.ones(n, 1)) and ((weights == 0) | (weights == 1)).all()
    assert term.baseline == pytest.approx(0.7) and norm.baseline.item() == pytest.approx(0.9 * 0.7 + 0.1 * term.reward)


def test_baseline_starts_at_the_first_mean_then_moves_by_its_decay():
    norm = CategoricalSample(baseline_decay=0.8)
    norm.update_baseline(torch.tensor([1.0, 3.0]))
    assert norm.baseline.item() == 2.0
    norm.update_baseline(torch.tensor([7.0]))
    assert norm.baseline.item() == pytest.approx(0.8 * 2.0 + 0.2 * 7.0)


def test_gumbel_samples_follow_the_softmax_and_anneal():
    torch.manual_seed(1)
    scores = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0])
    mask = torch.tensor([False, False, False, False, True])  # the best score is masked: never chosen
    norm = GumbelSoftmax(temperature=0.8, tau=2.0, tau_min=0.5, anneal_rate=0.1)
    n = 100_000
    weights = norm(scores.expand(n, 1, 5), mask)
    freq = weights.squeeze(1).mean(0)
    torch.testing.assert_close(freq, masked_softmax(scores, mask, 0.8), atol=0.01, rtol=0.0)
    assert (weights[..., 4] == 0).all()
    for _ in range(3):
        with sampled_attention(norm):
            pass
    assert norm.current_tau() == pytest.approx(max(0.5, 2.0 * math.exp(-0.3)))


@pytest.mark.parametrize("name", ["categorical", "gumbel"])
def test_masked_keys_are_never_sampled_and_gradients_reach_the_scores(name):
    torch.manual_seed(2)
    scores = (torch.randn(64, 3, 6) * 3).requires_grad_(True)
    mask = torch.rand(64, 3, 6) < 0.5
    mask[0, 0] = True  # a row with no allowed key
    mask[1, 1] = True
    mask[1, 1, 2] = False  # a row with one allowed key
    norm = build_normalizer(name, expectation_prob=0.0) if name == "categorical" else build_normalizer(name)
    with sampled_attention(norm) as samples:
        weights = norm(scores, mask)
    assert (weights[mask] == 0).all() and (weights[0, 0] == 0).all() and weights[1, 1, 2] == 1
    rows = ~mask.all(-1)
    torch.testing.assert_close(weights.sum(-1)[rows], torch.ones(int(rows.sum())))
    loss = samples.loss(torch.rand(64)).loss_sum if name == "categorical" else (weights * torch.randn(6)).sum()
    loss.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["categorical", "gumbel"])
def test_evaluation_is_deterministic_argmax_or_expectation(name):
    scores, mask = torch.randn(4, 2, 5), torch.rand(4, 2, 5) < 0.3
    mask[..., 0] = False
    soft = masked_softmax(scores, mask)
    norm = build_normalizer(name).eval()
    first = norm(scores, mask)
    torch.testing.assert_close(norm(scores, mask), first)
    assert (first.argmax(-1) == soft.argmax(-1)).all() and (first.sum(-1) == 1).all()
    torch.testing.assert_close(build_normalizer(name, eval_mode="expectation").eval()(scores, mask), soft)


def test_the_expectation_trick_uses_the_soft_weights_on_about_half_the_rows():
    torch.manual_seed(3)
    scores = torch.tensor([0.2, 0.5, -0.3])
    weights = CategoricalSample()(scores.expand(20_000, 1, 3)).squeeze(1)
    soft_rows = (weights == torch.softmax(scores, -1)).all(-1)
    assert abs(soft_rows.float().mean().item() - 0.5) < 0.02
    assert ((weights[~soft_rows] == 0) | (weights[~soft_rows] == 1)).all()


def test_nothing_is_recorded_outside_the_block_or_in_evaluation():
    norm = CategoricalSample()
    norm(torch.randn(2, 1, 3))  # not armed
    with sampled_attention(norm.eval()) as samples:
        norm(torch.randn(2, 1, 3))
    assert not samples.active and int(norm.num_batches) == 0


def test_options_come_from_the_configs_and_bad_ones_name_the_key():
    data = {"data": {"train": {"src": "a", "tgt": "b"}, "dev": {"src": "a", "tgt": "b"}}}
    cfg = from_dict(TranslationConfig, {**data, "model": {"rnn": {
        "normalize": "gumbel", "normalize_options": {"tau": 2.0, "anneal_rate": 0.001}}}})
    assert cfg.model.rnn.normalize_options == {"tau": 2.0, "anneal_rate": 0.001}
    with pytest.raises(ConfigError, match=r"c\.yaml: model: normalize_options: categorical does not take"):
        from_dict(ClassificationConfig, {"data": {"train": "t.csv"}, "model": {
            "normalize": "categorical", "normalize_options": {"tau": 1.0}}}, where="c.yaml")
    with pytest.raises(ConfigError, match=r"normalize_options: expectation_prob must be in \[0, 1\]"):
        from_dict(ClassificationConfig, {"data": {"train": "t.csv"}, "model": {
            "type": "han", "normalize": "categorical", "normalize_options": {"expectation_prob": 2}}}, where="c")


DOCS = [("the film was great", "pos"), ("a dull and boring plot", "neg"), ("superb acting", "pos"),
        ("awful ending", "neg"), ("wonderful story", "pos"), ("terrible film", "neg")]


def _classify(root, run, *extra):
    data = root / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in DOCS), encoding="utf-8")
    config = root / "cls.yaml"
    config.write_text(f"""
data: {{format: tsv, train: {data}, min_freq: 1, batch_size: 2}}
model: {{type: attention, encoder: none, embed_dim: 8, dropout: 0.0, embed_dropout: 0.0,
        normalize: categorical, normalize_options: {{entropy_weight: 0.01}}}}
training: {{run_dir: {root / run}, device: cpu, cpu_threads: 1, lr: 0.05, max_epochs: 50, eval_every: 1000,
           save_every: 2, metric: accuracy, metric_mode: max, log_every: 1, progress: false}}
""", encoding="utf-8")
    assert main(["classify", "train", str(config), *extra]) == 0
    return root / run


def test_classifier_trains_with_reinforce_and_resumes_exactly(tmp_path):
    """The task adds the REINFORCE term (reward: correctness) and logs it; stopping at step 3 and resuming to
    step 6 gives bit-identical weights and baseline to one uninterrupted run (the sampling RNG is resumed)."""
    whole = _classify(tmp_path, "whole", "--set", "training.max_steps=6")
    _classify(tmp_path, "parts", "--set", "training.max_steps=3")
    parts = _classify(tmp_path, "parts", "--resume", "--set", "training.max_steps=6")
    a, b = load_file(whole / "checkpoints" / "step-000006.safetensors"), \
        load_file(parts / "checkpoints" / "step-000006.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["pool.attention.normalize.num_updates"]) == 6
    log = (whole / "metrics.jsonl").read_text(encoding="utf-8")
    assert '"attn_reward"' in log and '"attn_entropy"' in log and '"attn_baseline"' in log


@pytest.mark.parametrize("name", ["categorical", "gumbel"])
def test_translator_trains_with_a_stochastic_normalizer(tmp_path, name):
    from test_translation_cli import tiny_config, tiny_corpus

    src, tgt = tiny_corpus(tmp_path)
    config = tiny_config(tmp_path, src, tgt, emb_dim=8, enc_hidden=8, dec_hidden=16, normalize=name)
    assert main(["train", str(config), "--set", "training.max_steps=4", "--set", "training.eval_every=1000",
                 "--set", "training.log_every=1", "--set", "training.progress=false"]) == 0
    log = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8")
    assert '"attn_entropy"' in log
    assert ('"attn_reward"' in log) == (name == "categorical")
