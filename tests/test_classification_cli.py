"""``seq2seq-attn classify``: train through the Trainer (overfitting a small labelled set), test, predict
and the attention explanations (JSONL and HTML)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from seq2seq_attn.classification.explain import Explanation, explanation, write_html, write_jsonl
from seq2seq_attn.classification.text import EncodedDoc
from seq2seq_attn.cli import main

DOCS = [
    ("The plot was dull. We saw it after dinner.", "neg"), ("The film was great.", "pos"),
    ("It runs for two hours. The acting was awful.", "neg"), ("The cast was superb. It was released in spring.", "pos"),
    ("This movie was boring.", "neg"), ("The story was wonderful. We saw it after dinner.", "pos"),
    ("The ending was terrible.", "neg"), ("The soundtrack was brilliant.", "pos"),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    data = root / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in DOCS), encoding="utf-8")
    config = root / "cls.yaml"
    config.write_text(f"""
data: {{format: tsv, train: {data}, test: {data}, min_freq: 1, batch_size: 4}}
model: {{type: attention, encoder: none, embed_dim: 16, score: additive, dropout: 0.0, embed_dropout: 0.0}}
training: {{run_dir: {root / 'run'}, device: cpu, lr: 0.05, max_epochs: 25, metric: accuracy, metric_mode: max,
           log_every: 1000}}
""", encoding="utf-8")
    assert main(["classify", "train", str(config)]) == 0
    return root / "run"


def test_train_overfits_and_writes_the_report(run_dir):
    for name in ("config.yaml", "vocab.json", "labels.json", "test_report.txt", "test_confusion.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["confusion"] == [[4, 0], [0, 4]]  # the training set, learned
    assert json.loads((run_dir / "labels.json").read_text()) == ["neg", "pos"]


def test_loaded_run_predicts_what_it_explains(run_dir, tmp_path, capsys):
    from seq2seq_attn.classification.data import load_labels
    from seq2seq_attn.classification.lifecycle import load_run

    run = load_run(run_dir, "cpu")
    assert run.labels == ["neg", "pos"] and run.weights.name == "best.safetensors" and not run.model.training
    texts = ["The acting was awful.", "The film was superb."]
    outs = run.predict(run.encode(texts))
    explanations = run.explain(texts)
    for out, ex in zip(outs, explanations):
        probs = torch.softmax(out.logits, -1).tolist()
        assert ex.probabilities == pytest.approx(dict(zip(run.labels, probs)))
        assert ex.label == run.labels[int(out.logits.argmax())]
    assert [ex.label for ex in explanations] == ["neg", "pos"]
    # labels.json is read in one place, which names the file when it is missing or not a list of names.
    (tmp_path / "labels.json").write_text('{"neg": 0}')
    with pytest.raises(ValueError, match="labels.json: expected a JSON list of label names"):
        load_labels(tmp_path)
    (tmp_path / "labels.json").unlink()
    with pytest.raises(FileNotFoundError, match="labels.json: no label set in the run directory"):
        load_labels(tmp_path)
    assert main(["classify", "test", str(tmp_path), "--device", "cpu"]) == 2
    assert "not a run dir (no config.yaml)" in capsys.readouterr().err


def test_predict_prints_labels_and_writes_explanations(run_dir, tmp_path, capsys):
    inputs = tmp_path / "docs.txt"
    inputs.write_text("The acting was awful. We saw it after dinner.\n\nThe film was superb.\n", encoding="utf-8")
    assert main(["classify", "predict", str(run_dir), "--input", str(inputs), "--explain", str(tmp_path / "ex"),
                 "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert [line.split("\t")[0] for line in lines] == ["neg", "", "pos"]  # the blank line keeps its place
    del lines[1]
    for line in lines:
        probs = dict(kv.split("=") for kv in line.split("\t")[2].split())
        assert sum(float(v) for v in probs.values()) == pytest.approx(1.0, abs=1e-3)
    records = [json.loads(r) for r in (tmp_path / "ex.jsonl").read_text().splitlines()]
    assert records[1] == {"index": 1, "label": None, "probabilities": {}, "text": "", "tokens": []}
    del records[1]
    assert [r["tokens"][3]["token"] for r in records] == ["awful", "superb"]
    for r in records:
        assert sum(t["weight"] for t in r["tokens"]) == pytest.approx(1.0, abs=1e-4)
    # The trained model attends to the sentiment word more than to anything else.
    assert max(records[0]["tokens"], key=lambda t: t["weight"])["token"] == "awful"
    page = (tmp_path / "ex.html").read_text()
    assert page.count('class="tok"') == sum(len(r["tokens"]) for r in records)
    assert page.count('<section class="doc"') == 2 and "<script" not in page and "http" not in page


def test_test_subcommand_and_bad_input(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nThe film was great.\tpos\nThe film was dull.\tmaybe\n", encoding="utf-8")
    assert main(["classify", "test", str(run_dir), "--data", str(bad), "--device", "cpu"]) == 2
    assert re.search(r"bad.tsv: row 2 .*unknown label 'maybe'", capsys.readouterr().err)
    assert main(["classify", "test", str(run_dir), "--data", str(bad), "--out", str(tmp_path), "--device",
                 "cpu"]) == 2
    assert main(["classify", "predict", str(tmp_path / "no_run"), "--input", str(bad)]) == 2


def test_html_marks_every_token_and_han_sentences(tmp_path):
    doc = EncodedDoc(np.arange(3, 8, dtype=np.int32), np.array([3, 2], dtype=np.int32),
                     ["a", "<b>", "c", "d", "e"])
    out = type("Out", (), {})()
    out.logits = torch.tensor([0.0, 2.0])
    out.token_weights = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.9, 0.1, 0.0, 0.0]])  # (S, W)
    out.sentence_weights = torch.tensor([0.2, 0.8])
    ex = explanation("a <b> c. d e", doc, out, ["x", "y"], hierarchical=True)
    assert ex.label == "y" and ex.sentence_weights == pytest.approx([0.2, 0.8])
    assert ex.weights == pytest.approx([0.1, 0.05, 0.05, 0.72, 0.08])  # word weight x sentence weight
    flat = Explanation("f g", "x", {"x": 0.6, "y": 0.4}, ["f", "g"], [0.3, 0.7], [(0, 2)])
    write_html([ex, flat], tmp_path / "e.html")
    write_jsonl([ex, flat], tmp_path / "e.jsonl")
    page = (tmp_path / "e.html").read_text()
    assert page.count('class="tok"') == 7 and page.count('class="sentbar"') == 2
    assert "&lt;b&gt;" in page and "<b>" not in page  # tokens are escaped
    assert 'rgba(220, 38, 38, 1.000)" title="weight 0.7200' in page  # the top token of a document is full colour
    han_record = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])
    assert [s["weight"] for s in han_record["sentences"]] == [0.2, 0.8]
    assert [t["word_weight"] for t in han_record["tokens"]] == [0.5, 0.25, 0.25, 0.9, 0.1]


@pytest.mark.parametrize("model", [{"type": "han", "hidden_size": 8},
                                   {"type": "transformer", "pooling": "cls", "num_heads": 2, "ff_dim": 16}])
def test_predictor_explains_han_and_transformer_runs(tmp_path, model):
    from seq2seq_attn.classification.config import ClassificationConfig
    from seq2seq_attn.classification.lifecycle import load_run
    from seq2seq_attn.classification.task import ClassificationData
    from seq2seq_attn.config import from_dict, save_config
    from seq2seq_attn.training import save_weights

    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in DOCS), encoding="utf-8")
    cfg = from_dict(ClassificationConfig, {"data": {"format": "tsv", "train": str(data), "min_freq": 1},
                                           "model": {"embed_dim": 16, **model}})
    run = tmp_path / "run"
    built = ClassificationData(cfg, run)
    built.save(run)  # vocab.json and labels.json
    save_config(cfg, run / "config.yaml")
    torch.manual_seed(0)
    from seq2seq_attn.classification.models import build_model

    save_weights(build_model(cfg.model, len(built.vocab), 2).state_dict(), run / "best.safetensors")
    texts = ["The plot was dull. We saw it after dinner. It runs for two hours.", "Great."]
    explanations = load_run(run, "cpu").explain(texts)
    assert [len(e.tokens) for e in explanations] == [17, 2]
    for ex in explanations:
        assert sum(ex.weights) == pytest.approx(1.0, abs=1e-5) and sum(ex.probabilities.values()) == pytest.approx(1)
        if model["type"] == "han":
            assert len(ex.sentence_weights) == len(ex.sentence_spans) and sum(ex.sentence_weights) == pytest.approx(1)
    assert explanations[0].sentence_spans == [(0, 5), (5, 11), (11, 17)]
