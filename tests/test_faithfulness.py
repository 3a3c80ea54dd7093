"""Faithfulness metrics and token attributions against hand computations on a toy classifier whose true
attributions are known: logit(pos) = sum of the tokens' values, logit(neg) = 0, so p(pos) = sigmoid(S)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from seq2seq_attn.classification.attribution import (
    Scorer,
    attention_scores,
    integrated_gradients_scores,
    keep_tokens,
    occlusion_scores,
)
from seq2seq_attn.classification.faithfulness import (
    BINS,
    aopc,
    evaluate_faithfulness,
    markdown_table,
    perturbation_curves,
    rank_agreement,
    top_k_mask,
)
from seq2seq_attn.classification.models import ClassifierOutput, padding_mask
from seq2seq_attn.classification.text import EncodedDoc

VALUES = [0.0, 2.0, -1.0, 0.5, 3.0, -0.3, 0.2, 1.2, -2.0, 0.8, 0.1]  # value of token id i (0 = padding)


class Toy(nn.Module):
    """Bag of values; attention = softmax of each token's value (so it ranks tokens like their effect)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VALUES), 1, padding_idx=0)
        with torch.no_grad():
            self.embed.weight.copy_(torch.tensor(VALUES).unsqueeze(1))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> ClassifierOutput:
        mask = padding_mask(lengths, tokens.size(1))  # (B, T)
        e = self.embed(tokens)[..., 0].masked_fill(mask, 0.0)  # (B, T)
        s = e.sum(1)
        weights = torch.softmax(e.masked_fill(mask, float("-inf")), -1).nan_to_num(0.0)
        return ClassifierOutput(torch.stack([torch.zeros_like(s), s], -1), weights)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def doc(ids: list[int], sentence_lengths: list[int] | None = None) -> EncodedDoc:
    return EncodedDoc(np.asarray(ids, dtype=np.int32), np.asarray(sentence_lengths or [len(ids)], dtype=np.int32),
                      [f"t{i}" for i in ids])


IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # 10 tokens, S = 4.5: predicted positive
S = sum(VALUES[i] for i in IDS)


def test_keep_tokens_keeps_order_and_drops_empty_sentences():
    d = doc([1, 2, 3, 4, 5], [2, 1, 2])
    kept = keep_tokens(d, np.array([True, False, False, True, True]))
    assert kept.ids.tolist() == [1, 4, 5] and kept.sentence_lengths.tolist() == [1, 2]
    assert kept.tokens == ["t1", "t4", "t5"]


def test_occlusion_and_integrated_gradients_match_the_closed_forms():
    model, d = Toy(), doc(IDS)
    scorer = Scorer(model, False)
    occ = occlusion_scores(scorer, d, target=1)
    assert occ == pytest.approx([sig(S) - sig(S - VALUES[i]) for i in IDS], abs=1e-6)
    # Along the straight path a*e every token sees the same gradient sigmoid'(a S), so
    # IG_i = e_i * integral_0^1 sigmoid'(a S) da = e_i (sigmoid(S) - 1/2) / S.
    ig = integrated_gradients_scores(model, d, target=1, hierarchical=False, steps=50)
    assert ig == pytest.approx([VALUES[i] * (sig(S) - 0.5) / S for i in IDS], abs=1e-5)
    assert ig.sum() == pytest.approx(sig(S) - 0.5, abs=1e-5)  # completeness
    att = attention_scores(scorer.outputs([d])[0], d, False)
    expected = np.exp([VALUES[i] for i in IDS])
    assert att == pytest.approx(expected / expected.sum(), abs=1e-6)


def test_comprehensiveness_sufficiency_and_aopc_by_hand():
    model, d = Toy(), doc(IDS)
    scorer = Scorer(model, False)
    scores = np.array([VALUES[i] for i in IDS])  # the true ranking: 3.0, 2.0, 1.2, 0.8, 0.5, ...
    assert np.flatnonzero(top_k_mask(scores, 0.2)).tolist() == [0, 3]  # 2.0 and 3.0
    assert top_k_mask(scores, 0.01).sum() == 1 and top_k_mask(scores, 0.5).sum() == 5
    p = sig(S)
    comp, suff = perturbation_curves(scorer, d, 1, p, scores, BINS)
    top = sorted((VALUES[i] for i in IDS), reverse=True)
    counts = [1, 1, 1, 2, 5]  # ceil(k * 10) for k = 1, 5, 10, 20, 50 %, at least one
    assert comp == pytest.approx([p - sig(S - sum(top[:n])) for n in counts], abs=1e-6)
    assert suff == pytest.approx([p - sig(sum(top[:n])) for n in counts], abs=1e-6)
    assert aopc(comp) == pytest.approx(sum(comp) / 6)


def test_rank_agreement_and_the_whole_evaluation():
    assert rank_agreement(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx((1.0, 1.0))
    assert rank_agreement(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx((-1.0, -1.0))
    assert all(math.isnan(v) for v in rank_agreement(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2, 3])))
    docs = [doc(IDS), doc([4, 2, 7, 9, 3]), doc([8, 2, 5, 1, 10, 6]), doc([])]
    result = evaluate_faithfulness(Toy(), docs, False, ig_steps=20, seed=0)
    assert result.num_docs == 3  # the empty document is skipped
    # IG and occlusion order the tokens by their effect on the predicted class: perfect agreement. Attention
    # (softmax of the values) agrees on the two positive documents and is reversed on the negative one
    # (S = -1), where the tokens it weighs most speak against the prediction: tau = (1 + 1 - 1) / 3.
    assert result.agreement[("integrated_gradients", "occlusion")] == pytest.approx((1.0, 1.0, 3))
    assert result.agreement[("attention", "occlusion")] == pytest.approx((1 / 3, 1 / 3, 3))
    assert result.agreement[("attention", "integrated_gradients")] == pytest.approx((1 / 3, 1 / 3, 3))
    # The true ranking (occlusion = IG here) is the most comprehensive and sufficient; random is no better.
    assert result.comprehensiveness["occlusion"] == pytest.approx(result.comprehensiveness["integrated_gradients"])
    for m in ("attention", "random"):
        assert np.all(result.comprehensiveness["occlusion"] >= result.comprehensiveness[m] - 1e-9), m
    c_occ, s_occ = result.aopc("occlusion")
    c_rand, s_rand = result.aopc("random")
    assert c_occ > c_rand and s_occ < s_rand
    table = markdown_table(result)
    assert table.count("\n| ") >= 7 and "| integrated_gradients vs occlusion | 1.000 | 1.000 | 3 |" in table


def test_integrated_gradients_of_han_add_up_to_the_probability_change():
    from seq2seq_attn.classification.models import HAN

    torch.manual_seed(0)
    model = HAN(20, 2, embed_dim=8, hidden_size=4).eval()
    d = doc([3, 4, 5, 6, 7], [2, 3])
    scorer = Scorer(model, True)
    p = scorer.probs([d])[0]
    target = int(p.argmax())
    ig = integrated_gradients_scores(model, d, target, hierarchical=True, steps=50)
    blank = EncodedDoc(np.zeros(5, dtype=np.int32), d.sentence_lengths, d.tokens)  # the all-padding baseline
    assert ig.shape == (5,) and ig.sum() == pytest.approx(p[target] - scorer.probs([blank])[0, target], abs=1e-4)
    att = attention_scores(scorer.outputs([d])[0], d, True)
    assert att.shape == (5,) and att.sum() == pytest.approx(1.0, abs=1e-6)


def test_faithfulness_command_writes_table_csv_and_plot(tmp_path, capsys):
    from seq2seq_attn.cli import main

    data = tmp_path / "train.tsv"
    rows = [("The plot was dull.", "neg"), ("The film was great.", "pos"), ("The acting was awful.", "neg"),
            ("The cast was superb.", "pos")]
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    config = tmp_path / "cls.yaml"
    config.write_text(f"data: {{format: tsv, train: {data}, test: {data}, min_freq: 1, batch_size: 4}}\n"
                      "model: {type: attention, encoder: gru, embed_dim: 8, hidden_size: 4}\n"
                      f"training: {{run_dir: {tmp_path / 'run'}, device: cpu, max_epochs: 2, metric: accuracy, "
                      "metric_mode: max, progress: false}\n", encoding="utf-8")
    assert main(["classify", "train", str(config)]) == 0
    capsys.readouterr()
    assert main(["classify", "faithfulness", str(tmp_path / "run"), "--limit", "3", "--ig-steps", "4",
                 "--out", str(tmp_path / "f"), "--device", "cpu", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 documents" in out and "| attention vs integrated_gradients |" in out
    assert (tmp_path / "f" / "faithfulness.png").stat().st_size > 0
    lines = (tmp_path / "f" / "faithfulness.csv").read_text().splitlines()
    assert lines[0] == "method,bin,comprehensiveness,sufficiency" and len(lines) == 1 + 4 * 6
    assert main(["classify", "faithfulness", str(tmp_path / "run"), "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err
